package combiner_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/hybridscore/hybridscore/internal/combiner"
)

const eps = 1e-9

// TestScoringExamples holds the worked examples of
// docs/scoring.md#worked-examples-of-the-combiner, and edge cases.
func TestScoringExamples(t *testing.T) {
	cfg := combiner.DefaultConfig()
	tests := []struct {
		name                  string
		vector, pattern       float64
		chars                 *combiner.Characteristics
		hybrid, vw, pw        float64
		adjusted              bool
		confidence, agreement float64
	}{
		{"none", 0.85, 0.72, nil, 0.811, 0.7, 0.3, false, 0.68295, 0.87},
		{"complex", 0.85, 0.72, &combiner.Characteristics{Complexity: "complex"}, 0.798, 0.6, 0.4, true, 0.68295, 0.87},
		{"very_complex+label", 0.85, 0.72, &combiner.Characteristics{Complexity: "very_complex", FeatureLabel: "auth"}, 0.772, 0.4, 0.6, true, 0.68295, 0.87},
		{"trivial", 0.85, 0.72, &combiner.Characteristics{Complexity: "trivial"}, 0.837, 0.9, 0.1, true, 0.68295, 0.87},
		{"label only", 0.5, 0.9, &combiner.Characteristics{FeatureLabel: "x"}, 0.66, 0.6, 0.4, true, 0.42, 0.6},
		{"disagree", 0.0, 1.0, nil, 0.3, 0.7, 0.3, false, 0.0, 0.0},
		// Edge cases.
		{"case-insensitive", 0.85, 0.72, &combiner.Characteristics{Complexity: "VERY_Complex", FeatureLabel: "auth"}, 0.772, 0.4, 0.6, true, 0.68295, 0.87},
		{"unknown complexity is moderate", 0.85, 0.72, &combiner.Characteristics{Complexity: "gigantic"}, 0.811, 0.7, 0.3, false, 0.68295, 0.87},
		{"moderate", 0.85, 0.72, &combiner.Characteristics{Complexity: "moderate"}, 0.811, 0.7, 0.3, false, 0.68295, 0.87},
		{"simple", 1, 0, &combiner.Characteristics{Complexity: "simple"}, 0.8, 0.8, 0.2, true, 0, 0},
		{"bounds both 1", 1, 1, nil, 1, 0.7, 0.3, false, 1, 1},
		{"bounds both 0", 0, 0, nil, 0, 0.7, 0.3, false, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cfg.Combine(tt.vector, tt.pattern, tt.chars)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want float64) {
				t.Helper()
				if math.Abs(got-want) > eps {
					t.Errorf("%s = %.12f, want %v", what, got, want)
				}
			}
			check("hybrid", r.Hybrid, tt.hybrid)
			check("vector weight", r.Weights.Vector, tt.vw)
			check("pattern weight", r.Weights.Pattern, tt.pw)
			check("confidence", r.Confidence, tt.confidence)
			check("agreement", r.Agreement, tt.agreement)
			if r.Weights.Adjusted != tt.adjusted {
				t.Errorf("adjusted = %v, want %v", r.Weights.Adjusted, tt.adjusted)
			}
		})
	}
}

func TestClampingAtBounds(t *testing.T) {
	cfg := combiner.DefaultConfig()
	cfg.VectorWeight, cfg.PatternWeight = 0.2, 0.8
	// 0.8 + 0.2 clamps to max 0.9; the label cannot push it further.
	w := cfg.Weights(&combiner.Characteristics{Complexity: "very_complex", FeatureLabel: "x"})
	if math.Abs(w.Pattern-0.9) > eps || math.Abs(w.Vector-0.1) > eps || !w.Adjusted {
		t.Fatalf("weights = %+v, want 0.1/0.9 adjusted", w)
	}
	cfg.VectorWeight, cfg.PatternWeight = 0.85, 0.15
	w = cfg.Weights(&combiner.Characteristics{Complexity: "trivial"})
	if math.Abs(w.Pattern-0.1) > eps || math.Abs(w.Vector-0.9) > eps {
		t.Fatalf("weights = %+v, want 0.9/0.1", w)
	}
}

func TestStrategies(t *testing.T) {
	chars := &combiner.Characteristics{Complexity: "complex", FeatureLabel: "x"}
	for _, tt := range []struct {
		strategy string
		pattern  float64
		reason   string
	}{
		{"fixed", 0.3, ""},
		{"complexity_based", 0.4, "complexity"},
		{"domain_based", 0.4, "domain"},
		{"hybrid", 0.5, "complexity+domain"},
	} {
		s, err := combiner.ParseStrategy(tt.strategy)
		if err != nil {
			t.Fatal(err)
		}
		cfg := combiner.DefaultConfig()
		cfg.Strategy = s
		w := cfg.Weights(chars)
		if math.Abs(w.Pattern-tt.pattern) > eps || w.Reason != tt.reason || s.String() != tt.strategy {
			t.Errorf("%s: weights %+v, want pattern %v reason %q", tt.strategy, w, tt.pattern, tt.reason)
		}
	}
	cfg := combiner.DefaultConfig()
	cfg.Adaptive = false
	if w := cfg.Weights(chars); w.Adjusted || w.Pattern != 0.3 {
		t.Errorf("adaptive off: %+v", w)
	}
	if _, err := combiner.ParseStrategy("random"); !errors.Is(err, combiner.ErrInvalidConfig) {
		t.Errorf("ParseStrategy(random) error = %v", err)
	}
}

func TestInputsOutsideUnitRejected(t *testing.T) {
	cfg := combiner.DefaultConfig()
	for _, in := range [][2]float64{{-0.01, 0.5}, {1.01, 0.5}, {0.5, -1}, {0.5, 2}, {math.NaN(), 0.5}, {0.5, math.Inf(1)}} {
		if _, err := cfg.Combine(in[0], in[1], nil); !errors.Is(err, combiner.ErrOutOfRange) {
			t.Errorf("Combine(%v, %v) error = %v, want ErrOutOfRange", in[0], in[1], err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := combiner.DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*combiner.Config){
		"sum":      func(c *combiner.Config) { c.VectorWeight = 0.8 },
		"negative": func(c *combiner.Config) { c.MinWeight = -0.1 },
		"order":    func(c *combiner.Config) { c.MinWeight, c.MaxWeight = 0.9, 0.1 },
		"nan":      func(c *combiner.Config) { c.MaxWeight = math.NaN() },
	} {
		c := combiner.DefaultConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, combiner.ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
}

func ExampleConfig_Combine() {
	cfg := combiner.DefaultConfig()
	r, _ := cfg.Combine(0.85, 0.72, &combiner.Characteristics{Complexity: "complex"})
	fmt.Printf("hybrid %.3f weights %.1f/%.1f confidence %.5f\n", r.Hybrid, r.Weights.Vector, r.Weights.Pattern, r.Confidence)
	// Output: hybrid 0.798 weights 0.6/0.4 confidence 0.68295
}
