package config

import (
	"net/url"
	"strings"

	"github.com/hybridscore/hybridscore/internal/redact"
)

// RedactURL returns s, a URL or a comma-separated list of them (NATS_URL),
// with any password or token in it replaced by "xxxxx": safe to log or to
// put in an error.
func RedactURL(s string) string { return redact.URL(s) }

// RedactError wraps err so that its message shows rawURL redacted, with the
// pieces of a malformed URL's password its parser quotes; errors.Is and
// errors.As still see err.
func RedactError(err error, rawURL string) error { return redact.Error(err, rawURL) }

// CheckNATSURL checks each URL of s (NATS_URL, comma-separated) before any
// client parses it: the client's own parse error quotes the pieces of a
// password holding '#', '?' or '/' as a host and port. The error names the
// variable and shows the URL redacted.
func CheckNATSURL(s string) error {
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "://") {
			p = "nats://" + p // the client accepts host:port alone
		}
		u, err := url.Parse(p)
		switch {
		case err != nil:
			return bad("NATS_URL", "%s is not a valid URL (percent-encode reserved characters such as %% # ? / @ in a user name or password)", RedactURL(p))
		case u.Host == "" || u.Fragment != "" || u.RawQuery != "" || (u.User == nil && strings.Contains(p, "@")):
			return bad("NATS_URL", "%s is not a valid URL: want scheme://[user:password@]host:port (percent-encode # ? / @ in a user name or password)", RedactURL(p))
		}
	}
	return nil
}
