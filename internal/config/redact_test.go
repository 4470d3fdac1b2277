package config_test

import (
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/internal/config"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://worker:s3cr3t@nats:4222":          "nats://worker:xxxxx@nats:4222",
		"nats://t0ken@nats:4222":                  "nats://xxxxx@nats:4222",
		"nats://a:p1@n1:4222,nats://a:p2@n2:4222": "nats://a:xxxxx@n1:4222,nats://a:xxxxx@n2:4222",
		"nats://127.0.0.1:4222":                   "nats://127.0.0.1:4222",
		"tls://u:%zz@host:4222":                   "tls://xxxxx@host:4222",
		"":                                        "",
	} {
		got := config.RedactURL(in)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"s3cr3t", "t0ken", "p1", "p2", "%zz"} {
			if strings.Contains(in, secret) && strings.Contains(got, secret) {
				t.Errorf("RedactURL(%q) kept %q", in, secret)
			}
		}
	}
}

// The inbox prefix is the user's, from NATS_USER or the URL; a token in
// the URL is never taken for a user name, and NATS_INBOX_PREFIX wins.
func TestInboxPrefix(t *testing.T) {
	for _, tt := range []struct {
		auth config.NATSAuth
		url  string
		want string
	}{
		{config.NATSAuth{NATSUser: "worker"}, "nats://nats:4222", "_INBOX_worker"},
		{config.NATSAuth{}, "nats://producer:pw@nats:4222,nats://producer:pw@n2:4222", "_INBOX_producer"},
		{config.NATSAuth{}, "nats://s3cretToken@nats:4222", ""},
		{config.NATSAuth{NATSToken: "t"}, "nats://u:p@nats:4222", ""},
		{config.NATSAuth{}, "nats://nats:4222", ""},
		{config.NATSAuth{NATSUser: "a.b"}, "nats://nats:4222", ""},
		{config.NATSAuth{NATSUser: "worker", NATSInboxPrefix: "_INBOX_eu"}, "", "_INBOX_eu"},
	} {
		if got := tt.auth.InboxPrefix(tt.url); got != tt.want {
			t.Errorf("%+v %s: %q, want %q", tt.auth, tt.url, got, tt.want)
		}
	}
}
