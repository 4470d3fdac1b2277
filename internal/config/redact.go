package config

import (
	"net/url"
	"strings"
)

// RedactURL returns s, a URL or a comma-separated list of them (NATS_URL),
// with any password or token in it replaced by "xxxxx": safe to log or to
// put in an error.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if at := strings.LastIndexByte(p, '@'); at >= 0 { // unparsable: drop all before the host
				if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
					parts[i] = p[:scheme+3] + "xxxxx" + p[at:]
				} else {
					parts[i] = "xxxxx" + p[at:]
				}
			}
			continue
		}
		if _, hasPass := u.User.Password(); hasPass {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a lone token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// RedactError wraps err so that its message shows rawURL redacted; errors.Is
// and errors.As still see err.
func RedactError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err, raw: rawURL}
}

type redacted struct {
	err error
	raw string
}

func (r *redacted) Error() string {
	msg := r.err.Error()
	for _, p := range strings.Split(r.raw, ",") {
		if p = strings.TrimSpace(p); p != "" {
			msg = strings.ReplaceAll(msg, p, RedactURL(p))
		}
	}
	return msg
}

func (r *redacted) Unwrap() error { return r.err }
