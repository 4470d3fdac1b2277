package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
)

// NATSAuth is how a program authenticates to NATS and secures the
// connection. The worker and the publisher embed it, so both read the same
// variables and flags. Secrets given here never appear in logs or errors.
type NATSAuth struct {
	NATSCreds    string `name:"nats-creds" env:"NATS_CREDS" help:"Credentials file (JWT and NKey seed)."`
	NATSUser     string `name:"nats-user" env:"NATS_USER" help:"User name."`
	NATSPassword string `name:"nats-password" env:"NATS_PASSWORD" help:"Password."`
	NATSToken    string `name:"nats-token" env:"NATS_TOKEN" help:"Token."`
	NATSNKeySeed string `name:"nats-nkey-seed" env:"NATS_NKEY_SEED" help:"NKey seed file."`
	NATSTLSCA    string `name:"nats-tls-ca" env:"NATS_TLS_CA" help:"CA certificate file; the server's certificate must chain to it."`
	NATSTLSCert  string `name:"nats-tls-cert" env:"NATS_TLS_CERT" help:"Client certificate file (mutual TLS)."`
	NATSTLSKey   string `name:"nats-tls-key" env:"NATS_TLS_KEY" help:"Client key file (mutual TLS)."`
	// NATSInboxPrefix: see InboxPrefix.
	NATSInboxPrefix string `name:"nats-inbox-prefix" env:"NATS_INBOX_PREFIX" help:"Prefix of this program's reply subjects (default _INBOX_<user> when a user name is given, in NATS_USER or the URL, else _INBOX). deployments/nats/nats.conf lets each user read only its own."`
}

// InboxPrefix returns the prefix of the reply subjects (inboxes) a program
// connecting to natsURL uses: NATS_INBOX_PREFIX, else _INBOX_<user> for the
// user of NATS_USER or of the (first) URL, else "" (the client's default,
// _INBOX). Replies to a user's requests (PubAcks, key-value lookups,
// JetStream API answers) then come on subjects only that user may
// subscribe to: under deployments/nats/nats.conf no user can read or forge
// another's. A token in the URL (a user without a password) is never taken
// for a user name.
func (a NATSAuth) InboxPrefix(natsURL string) string {
	if a.NATSInboxPrefix != "" {
		return a.NATSInboxPrefix
	}
	user := a.NATSUser
	if user == "" && a.NATSCreds == "" && a.NATSNKeySeed == "" && a.NATSToken == "" {
		first, _, _ := strings.Cut(natsURL, ",")
		if u, err := url.Parse(strings.TrimSpace(first)); err == nil && u.User != nil {
			if _, hasPass := u.User.Password(); hasPass {
				user = u.User.Username()
			}
		}
	}
	if user == "" || strings.ContainsAny(user, ".*> \t\r\n") {
		return ""
	}
	return "_INBOX_" + user
}

// Options returns the nats.go options for a connection to natsURL: one
// authentication method (credentials file, NKey, token, or user and
// password, in that order of precedence), TLS and the inbox prefix
// (InboxPrefix).
func (a NATSAuth) Options(natsURL string) ([]nats.Option, error) {
	var opts []nats.Option
	if p := a.InboxPrefix(natsURL); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	switch {
	case a.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(a.NATSCreds))
	case a.NATSNKeySeed != "":
		o, err := nats.NkeyOptionFromSeed(a.NATSNKeySeed)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED: %w", err)
		}
		opts = append(opts, o)
	case a.NATSToken != "":
		opts = append(opts, nats.Token(a.NATSToken))
	case a.NATSUser != "":
		opts = append(opts, nats.UserInfo(a.NATSUser, a.NATSPassword))
	}
	if a.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(a.NATSTLSCA))
	}
	if a.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(a.NATSTLSCert, a.NATSTLSKey))
	}
	return opts, nil
}
