package config

import (
	"fmt"

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
}

// Options returns the nats.go options for a: one authentication method
// (credentials file, NKey, token, or user and password, in that order of
// precedence) and TLS.
func (a NATSAuth) Options() ([]nats.Option, error) {
	var opts []nats.Option
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
