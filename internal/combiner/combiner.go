// Package combiner merges a vector similarity and a pattern similarity into
// one hybrid score with adaptive weights (docs/scoring.md#combining).
package combiner

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Strategy selects which adjustments adapt the weights.
type Strategy int

// The strategies (docs/scoring.md#strategies).
const (
	Hybrid          Strategy = iota // complexity and domain adjustments
	Fixed                           // no adjustment
	ComplexityBased                 // complexity adjustment only
	DomainBased                     // domain adjustment only
)

var strategyNames = [...]string{"hybrid", "fixed", "complexity_based", "domain_based"}

// String returns the strategy's configuration name.
func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return strategyNames[s]
}

// ParseStrategy reads a strategy name, case-insensitively.
func ParseStrategy(name string) (Strategy, error) {
	for i, n := range strategyNames {
		if strings.EqualFold(name, n) {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown strategy %q (want fixed, complexity_based, domain_based or hybrid)", ErrInvalidConfig, name)
}

// Config holds the combiner's parameters. Its zero value is not valid; start
// from DefaultConfig.
type Config struct {
	VectorWeight  float64  // default vector weight
	PatternWeight float64  // default pattern weight
	MinWeight     float64  // lower bound of either weight after adaptation
	MaxWeight     float64  // upper bound of either weight after adaptation
	Adaptive      bool     // adapt weights to task characteristics
	Strategy      Strategy // which adaptations apply
}

// DefaultConfig returns the defaults (docs/scoring.md#defaults): weights 0.7
// and 0.3, bounds 0.1 and 0.9, adaptive, strategy hybrid.
func DefaultConfig() Config {
	return Config{VectorWeight: 0.7, PatternWeight: 0.3, MinWeight: 0.1, MaxWeight: 0.9, Adaptive: true, Strategy: Hybrid}
}

// ErrInvalidConfig reports a configuration the combiner cannot use.
var ErrInvalidConfig = errors.New("combiner: invalid configuration")

// ErrOutOfRange reports a similarity input outside [0, 1] or not finite.
var ErrOutOfRange = errors.New("combiner: similarity out of [0, 1]")

// Validate checks that weights lie in [0, 1], the defaults sum to 1 (±0.01)
// and the bounds are ordered.
func (c Config) Validate() error {
	for _, v := range []struct {
		name string
		val  float64
	}{{"vector weight", c.VectorWeight}, {"pattern weight", c.PatternWeight}, {"min weight", c.MinWeight}, {"max weight", c.MaxWeight}} {
		if !inUnit(v.val) {
			return fmt.Errorf("%w: %s %v not in [0, 1]", ErrInvalidConfig, v.name, v.val)
		}
	}
	if math.Abs(c.VectorWeight+c.PatternWeight-1) > 0.01 {
		return fmt.Errorf("%w: vector weight %v + pattern weight %v must sum to 1", ErrInvalidConfig, c.VectorWeight, c.PatternWeight)
	}
	if c.MinWeight > c.MaxWeight {
		return fmt.Errorf("%w: min weight %v above max weight %v", ErrInvalidConfig, c.MinWeight, c.MaxWeight)
	}
	if c.Strategy < 0 || int(c.Strategy) >= len(strategyNames) {
		return fmt.Errorf("%w: unknown strategy %d", ErrInvalidConfig, c.Strategy)
	}
	return nil
}

// Characteristics are the job's task_characteristics that steer the weights.
type Characteristics struct {
	Complexity   string // trivial, simple, moderate, complex, very_complex; any case; other values count as moderate
	FeatureLabel string // non-empty: the task belongs to a labelled feature domain
	TaskType     string // informational
}

// Weights are the weights applied to one score.
type Weights struct {
	Vector, Pattern float64
	Adjusted        bool
	// Reason says which adjustments applied ("" when none): "complexity",
	// "domain" or "complexity+domain".
	Reason string
}

// Result is one combined score.
type Result struct {
	Hybrid     float64
	Weights    Weights
	Confidence float64 // agreement × mean of the two inputs
	Agreement  float64 // 1 − |vector − pattern|
}

// ComplexityDelta returns the change a complexity makes to the pattern
// weight; unknown values count as moderate (0).
func ComplexityDelta(complexity string) float64 {
	switch {
	case strings.EqualFold(complexity, "trivial"):
		return -0.2
	case strings.EqualFold(complexity, "simple"):
		return -0.1
	case strings.EqualFold(complexity, "complex"):
		return 0.1
	case strings.EqualFold(complexity, "very_complex"):
		return 0.2
	}
	return 0
}

// Weights returns the weights for a task; chars nil means the job carried no
// task_characteristics.
func (c *Config) Weights(chars *Characteristics) Weights {
	w := Weights{Vector: c.VectorWeight, Pattern: c.PatternWeight}
	if !c.Adaptive || chars == nil || c.Strategy == Fixed {
		return w
	}
	var complexityApplied, domainApplied bool
	if c.Strategy == ComplexityBased || c.Strategy == Hybrid {
		if d := ComplexityDelta(chars.Complexity); d != 0 {
			w.Pattern = clamp(w.Pattern+d, c.MinWeight, c.MaxWeight)
			w.Vector = 1 - w.Pattern
			complexityApplied = true
		}
	}
	if (c.Strategy == DomainBased || c.Strategy == Hybrid) && chars.FeatureLabel != "" {
		w.Pattern = min(c.MaxWeight, w.Pattern+0.1)
		w.Vector = 1 - w.Pattern
		domainApplied = true
	}
	if total := w.Vector + w.Pattern; total > 0 {
		w.Vector /= total
	}
	w.Vector = clamp(w.Vector, c.MinWeight, c.MaxWeight)
	w.Pattern = 1 - w.Vector
	switch {
	case complexityApplied && domainApplied:
		w.Reason = "complexity+domain"
	case complexityApplied:
		w.Reason = "complexity"
	case domainApplied:
		w.Reason = "domain"
	}
	w.Adjusted = complexityApplied || domainApplied
	return w
}

// Combine scores one pair of similarities. Both must be finite and in
// [0, 1], else it returns ErrOutOfRange.
func (c *Config) Combine(vector, pattern float64, chars *Characteristics) (Result, error) {
	if !inUnit(vector) {
		return Result{}, fmt.Errorf("%w: vector similarity %v", ErrOutOfRange, vector)
	}
	if !inUnit(pattern) {
		return Result{}, fmt.Errorf("%w: pattern similarity %v", ErrOutOfRange, pattern)
	}
	w := c.Weights(chars)
	agreement := 1 - math.Abs(vector-pattern)
	return Result{
		Hybrid:     clamp(vector*w.Vector+pattern*w.Pattern, 0, 1),
		Weights:    w,
		Agreement:  agreement,
		Confidence: agreement * (vector + pattern) / 2,
	}, nil
}

func inUnit(v float64) bool { return v >= 0 && v <= 1 } // false for NaN

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
