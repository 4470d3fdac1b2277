package redact_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/internal/redact"
)

// The parse error of a password holding '#' quotes the piece before it as
// a port; the wrapped error shows neither the piece nor the whole secret.
func TestErrorHidesThePiecesAParserQuotes(t *testing.T) {
	for _, raw := range []string{"nats://worker:Sup3r#pw@host:4222", "http://u:Sup3r?pw@collector:4318", "nats://a@b,nats://worker:Sup3r/pw@host"} {
		u := raw[strings.LastIndexByte(raw, ',')+1:]
		_, perr := url.Parse(u)
		if perr == nil {
			t.Fatalf("%s parsed", u)
		}
		err := redact.Error(perr, raw)
		if strings.Contains(err.Error(), "Sup3r") || !errors.Is(err, perr) {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

func TestTextLeavesURLsWithoutSecrets(t *testing.T) {
	const msg = "dial nats://127.0.0.1:4222: connection refused"
	if got := redact.Text(msg, "nats://127.0.0.1:4222"); got != msg {
		t.Errorf("%q", got)
	}
}
