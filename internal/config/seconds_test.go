package config_test

import (
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/hybridscore/hybridscore/internal/config"
)

// A timeout reads the duration notation of every other duration setting,
// and the number of seconds it took before.
func TestTimeoutsReadBothNotations(t *testing.T) {
	for _, tt := range []struct {
		langextract, breaker string
		want                 [2]time.Duration
	}{
		{"", "", [2]time.Duration{10 * time.Second, time.Minute}},
		{"10.0", "60", [2]time.Duration{10 * time.Second, time.Minute}},
		{"2.5s", "1m30s", [2]time.Duration{2500 * time.Millisecond, 90 * time.Second}},
		{"0.25", "500ms", [2]time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
	} {
		if tt.langextract != "" {
			t.Setenv("LANGEXTRACT_TIMEOUT", tt.langextract)
			t.Setenv("CIRCUIT_BREAKER_TIMEOUT", tt.breaker)
		}
		var cli struct {
			config.Config `embed:""`
		}
		p, err := kong.New(&cli)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(nil); err != nil {
			t.Fatalf("%q, %q: %v", tt.langextract, tt.breaker, err)
		}
		got := [2]time.Duration{config.Seconds(cli.LangextractTimeout), config.Seconds(cli.CircuitBreakerTimeout)}
		if got != tt.want {
			t.Errorf("LANGEXTRACT_TIMEOUT=%q CIRCUIT_BREAKER_TIMEOUT=%q: got %v, want %v", tt.langextract, tt.breaker, got, tt.want)
		}
	}
	t.Setenv("LANGEXTRACT_TIMEOUT", "ten seconds")
	var cli struct {
		config.Config `embed:""`
	}
	p, err := kong.New(&cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(nil); err == nil {
		t.Error(`LANGEXTRACT_TIMEOUT="ten seconds" was accepted`)
	}
	if d := config.Defaults(); d.LangextractTimeout != 10 || d.CircuitBreakerTimeout != 60 {
		t.Errorf("Defaults: %v, %v", d.LangextractTimeout, d.CircuitBreakerTimeout)
	}
}
