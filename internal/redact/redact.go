// Package redact removes the secrets of URLs (a password, a lone token) from
// text meant for logs and errors, including from the error a URL parser
// returns for a malformed URL, which quotes the pieces it cut the URL into.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces every secret.
const Mask = "xxxxx"

// URL returns s, a URL or a comma-separated list of them (NATS_URL), with
// any password or token in it replaced by Mask.
func URL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if at := strings.LastIndexByte(p, '@'); at >= 0 { // unparsable, or a '#' or '?' cut the user information off: drop all before the host
				if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
					parts[i] = p[:scheme+3] + Mask + p[at:]
				} else {
					parts[i] = Mask + p[at:]
				}
			}
			continue
		}
		if _, hasPass := u.User.Password(); hasPass {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else {
			u.User = url.User(Mask) // a lone token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// Secrets returns the secrets of raw, a URL or a comma-separated list of
// them: each password (or lone token) as written, and the pieces of it a
// URL parser cuts at '#', '?' and '/', three bytes or longer (the error of a malformed URL quotes
// those, e.g. `invalid port ":Sup3r"` for "nats://u:Sup3r#pw@host").
func Secrets(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		at := strings.LastIndexByte(p, '@')
		if at < 0 {
			continue
		}
		info := p[:at]
		if scheme := strings.Index(info, "://"); scheme >= 0 {
			info = info[scheme+3:]
		}
		secret := info // a lone token
		if colon := strings.IndexByte(info, ':'); colon >= 0 {
			secret = info[colon+1:]
		}
		if secret == "" {
			continue
		}
		out = append(out, secret)
		if dec, err := url.PathUnescape(secret); err == nil && dec != secret {
			out = append(out, dec)
		}
		for piece := range strings.FieldsFuncSeq(secret, func(r rune) bool { return r == '#' || r == '?' || r == '/' || r == '@' }) {
			if piece != secret && len(piece) >= 3 { // shorter pieces would mask ordinary words
				out = append(out, piece)
			}
		}
	}
	return out
}

// Text returns msg with each of the raw URLs' secrets (see Secrets), and
// each whole raw URL, replaced by its redacted form.
func Text(msg string, raw ...string) string {
	for _, r := range raw {
		for _, p := range strings.Split(r, ",") {
			if p = strings.TrimSpace(p); p != "" {
				msg = strings.ReplaceAll(msg, p, URL(p))
			}
		}
		for _, s := range Secrets(r) {
			msg = strings.ReplaceAll(msg, s, Mask)
		}
	}
	return msg
}

// Error wraps err so that its message shows the raw URLs redacted (see
// Text); errors.Is and errors.As still see err.
func Error(err error, raw ...string) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err, raw: raw}
}

type redacted struct {
	err error
	raw []string
}

func (r *redacted) Error() string { return Text(r.err.Error(), r.raw...) }

func (r *redacted) Unwrap() error { return r.err }
