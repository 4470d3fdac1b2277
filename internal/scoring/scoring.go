// Package scoring turns one job's texts and vector similarity into one
// outcome: both analyses fetched concurrently through the cache (and behind
// it the breaker and langextract), the five-part pattern similarity, and the
// adaptive combination, or a degraded vector-only outcome that says why.
package scoring

import (
	"context"
	"errors"
	"fmt"
	"github.com/hybridscore/hybridscore/pkg/job"
	"time"

	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/breaker"
	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// Cache is what the service needs of the semantic cache.
type Cache interface {
	// Cached returns tier-1 features at once, or nil, and counts a hit.
	Cached(text, language, semContext string) *similarity.Features
	// Peek is Cached without counting.
	Peek(text, language, semContext string) *similarity.Features
	// Get returns features from any tier or a load, and where they came from.
	Get(ctx context.Context, text, language, semContext string) (*similarity.Features, semcache.Status, error)
}

// Observer is told about every outcome (metrics); it must not retain o.
type Observer interface {
	ObserveOutcome(o *Outcome)
}

// Request is one job's input to scoring.
type Request struct {
	Task, Pattern   string
	Vector          float64
	Characteristics *combiner.Characteristics // nil: the job had none
	Language        string                    // "" means job.DefaultLanguage
	Context         string                    // "" means job.DefaultContext
}

// Status of an outcome.
type Status uint8

// Outcome statuses.
const (
	Scored   Status = iota + 1 // hybrid score
	Degraded                   // vector-only fallback
)

// String returns scored or degraded.
func (s Status) String() string {
	switch s {
	case Scored:
		return "scored"
	case Degraded:
		return "degraded"
	}
	return "unknown"
}

// Outcome is the result of scoring one request.
type Outcome struct {
	Status     Status
	Hybrid     float64
	Vector     float64
	Pattern    float64 // valid when Scored
	Weights    combiner.Weights
	Confidence float64               // valid when Scored
	Agreement  float64               // valid when Scored
	Components similarity.Components // valid when Scored
	// Err is the analysis failure behind a Degraded outcome; FallbackReason
	// names it as results do.
	Err            error
	FallbackReason string
	CacheTask      semcache.Status
	CachePattern   semcache.Status
	Duration       time.Duration
}

// ErrInvalidInput is returned for a request that cannot be scored at all
// (a vector similarity outside [0, 1]).
var ErrInvalidInput = errors.New("scoring: invalid input")

// ErrInternal is returned when scoring failed through a fault of its own (a
// panic): the request is not to blame.
var ErrInternal = errors.New("scoring: internal error")

// Config holds the scoring parameters.
type Config struct {
	Combiner combiner.Config
	Weights  similarity.Weights
}

// DefaultConfig returns the default combiner and component weights
// (docs/scoring.md#defaults).
func DefaultConfig() Config {
	return Config{Combiner: combiner.DefaultConfig(), Weights: similarity.DefaultWeights}
}

// Service scores requests. Safe for concurrent use.
type Service struct {
	cache Cache
	cfg   Config
	obs   Observer
}

// New returns a Service over cache. obs may be nil.
func New(cache Cache, cfg Config, obs Observer) (*Service, error) {
	if err := cfg.Combiner.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Weights.Validate(); err != nil {
		return nil, err
	}
	return &Service{cache: cache, cfg: cfg, obs: obs}, nil
}

// Score scores one request. It returns an error only for ErrInvalidInput
// and ErrInternal; every analysis failure gives a Degraded outcome. It never
// panics.
func (s *Service) Score(ctx context.Context, req *Request) (o Outcome, err error) {
	o, _, err = s.score(ctx, req, true)
	return o, err
}

// ScoreCached scores one request from the in-memory tier alone, without
// waiting on anything: ok is false (and nothing is observed) when an
// analysis is not there, and Score must be used instead.
func (s *Service) ScoreCached(req *Request) (o Outcome, ok bool, err error) {
	return s.score(context.Background(), req, false)
}

func (s *Service) score(ctx context.Context, req *Request, mayLoad bool) (o Outcome, ok bool, err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			o, ok, err = Outcome{}, true, fmt.Errorf("%w: scoring panicked: %v", ErrInternal, r)
		}
	}()
	if !(req.Vector >= 0 && req.Vector <= 1) {
		return Outcome{}, true, fmt.Errorf("%w: vector similarity %v not in [0, 1]", ErrInvalidInput, req.Vector)
	}
	lang, sc := req.Language, req.Context
	if lang == "" {
		lang = job.DefaultLanguage
	}
	if sc == "" {
		sc = job.DefaultContext
	}
	o.Vector = req.Vector
	// Asked not to wait, look first without counting: a hit counted now
	// would be counted again by the Score that follows a miss.
	if !mayLoad && (s.cache.Peek(req.Task, lang, sc) == nil || s.cache.Peek(req.Pattern, lang, sc) == nil) {
		return Outcome{}, false, nil
	}
	ft := s.cache.Cached(req.Task, lang, sc)
	fp := s.cache.Cached(req.Pattern, lang, sc)
	if !mayLoad && (ft == nil || fp == nil) { // evicted in between: rare
		return Outcome{}, false, nil
	}
	o.CacheTask, o.CachePattern = semcache.Memory, semcache.Memory
	var errT, errP error
	switch {
	case ft == nil && fp == nil:
		ft, fp, o.CacheTask, o.CachePattern, errT, errP = s.fetchBoth(ctx, req, lang, sc)
	case ft == nil:
		ft, o.CacheTask, errT = s.cache.Get(ctx, req.Task, lang, sc)
	case fp == nil:
		fp, o.CachePattern, errP = s.cache.Get(ctx, req.Pattern, lang, sc)
	}
	if errT != nil || errP != nil {
		o.degrade(errors.Join(errT, errP))
		if errT != nil {
			o.CacheTask = semcache.Miss
		}
		if errP != nil {
			o.CachePattern = semcache.Miss
		}
	} else {
		o.Components, o.Pattern = similarity.Compare(ft, fp, &s.cfg.Weights)
		r, err := s.cfg.Combiner.Combine(req.Vector, o.Pattern, req.Characteristics)
		if err != nil {
			return Outcome{}, true, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		o.Status, o.Hybrid, o.Weights, o.Confidence, o.Agreement = Scored, r.Hybrid, r.Weights, r.Confidence, r.Agreement
	}
	o.Duration = time.Since(start)
	if s.obs != nil {
		s.obs.ObserveOutcome(&o)
	}
	return o, true, nil
}

// fetchBoth looks both texts up at the same time. It is apart from Score so
// that only this slow path pays for the goroutine's captured variables.
func (s *Service) fetchBoth(ctx context.Context, req *Request, lang, sc string) (ft, fp *similarity.Features, st, sp semcache.Status, errT, errP error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ft, st, errT = s.cache.Get(ctx, req.Task, lang, sc)
	}()
	fp, sp, errP = s.cache.Get(ctx, req.Pattern, lang, sc)
	<-done
	return
}

// degrade fills o as the vector-only fallback for err
// (docs/scoring.md#the-degraded-fallback).
func (o *Outcome) degrade(err error) {
	o.Status = Degraded
	o.Hybrid = o.Vector
	o.Weights = combiner.Weights{Vector: 1, Pattern: 0}
	o.Pattern, o.Confidence, o.Agreement, o.Components = 0, 0, 0, similarity.Components{}
	o.Err = err
	o.FallbackReason = langextract.FallbackReason(err)
}

// AnalyzeFunc is one semantic analysis: langextract, the built-in analyzer,
// or either behind a breaker.
type AnalyzeFunc func(ctx context.Context, text, language, semContext string) (*langextract.Analysis, error)

// Builtin analyses in-process with the built-in analyzer.
func Builtin(ctx context.Context, text, language, semContext string) (*langextract.Analysis, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return analyzer.Analyze(text, language, semContext), nil
}

// Guard puts fn behind b. The breaker counts the failures langextract
// says count (CountsAsFailure) and, when open, answers
// langextract.ErrCircuitOpen.
func Guard(b *breaker.Breaker[*langextract.Analysis], fn AnalyzeFunc) AnalyzeFunc {
	return func(ctx context.Context, text, language, semContext string) (*langextract.Analysis, error) {
		return b.Do(func() (*langextract.Analysis, error) { return fn(ctx, text, language, semContext) })
	}
}

// NewBreaker returns the per-process langextract breaker.
func NewBreaker(threshold uint32, timeout time.Duration, onState func(from, to breaker.State)) *breaker.Breaker[*langextract.Analysis] {
	return breaker.New[*langextract.Analysis](breaker.Config{
		Name: "langextract", Threshold: threshold, Timeout: timeout,
		Counts: langextract.CountsAsFailure, OnStateChange: onState, OpenError: langextract.ErrCircuitOpen,
	})
}

// Loader adapts fn to the cache: it reduces each analysis to features.
func Loader(fn AnalyzeFunc) semcache.Loader {
	return func(ctx context.Context, text, language, semContext string) (*similarity.Features, error) {
		a, err := fn(ctx, text, language, semContext)
		if err != nil {
			return nil, err
		}
		return a.Features(), nil
	}
}
