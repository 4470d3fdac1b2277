// Package scoring is the engine: it turns one job's texts and vector
// similarity into one outcome. Both texts' features are fetched concurrently
// from a FeatureSource (in the worker, the cache in front of the analysis
// source), compared in five parts, and combined with the vector similarity
// under adaptive weights; when a text cannot be analysed, the outcome is the
// degraded vector-only fallback and says why. The engine knows nothing of
// langextract, the breaker or Redis: the worker wires those in.
package scoring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/similarity"
	"github.com/hybridscore/hybridscore/internal/tracing"
)

// FeatureSource is where the engine gets the features of a text:
// *semcache.Cache in the worker.
type FeatureSource interface {
	// Cached returns features held in memory at once, or nil, and counts a hit.
	Cached(q analysis.Query) *similarity.Features
	// CachedPair returns both texts' features held in memory, counting a
	// hit for each, or nil for both and counts nothing.
	CachedPair(a, b analysis.Query) (fa, fb *similarity.Features)
	// Get returns features from any tier or a load, and where they came from.
	Get(ctx context.Context, q analysis.Query) (*similarity.Features, semcache.Status, error)
}

// Observer is told about every outcome (metrics). It takes a copy: a
// pointer handed to an interface would move every Outcome to the heap.
type Observer interface {
	ObserveOutcome(o Outcome)
}

// Request is one job's input to scoring.
type Request struct {
	Task, Pattern   string
	Vector          float64
	Characteristics *combiner.Characteristics // nil: the job had none
	Language        string                    // "" means the job default (analysis.Query.WithDefaults)
	Context         string                    // "" means the job default
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
	cache FeatureSource
	cfg   Config
	obs   Observer
}

// New returns a Service over the features of cache. obs may be nil.
func New(cache FeatureSource, cfg Config, obs Observer) (*Service, error) {
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
func (s *Service) ScoreCached(req Request) (o Outcome, ok bool, err error) {
	return s.score(context.Background(), &req, false)
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
	qt := analysis.Query{Text: req.Task, Language: req.Language, Context: req.Context}.WithDefaults()
	qp := analysis.Query{Text: req.Pattern, Language: qt.Language, Context: qt.Context}
	o.Vector = req.Vector
	var ft, fp *similarity.Features
	if mayLoad {
		ft, fp = s.cache.Cached(qt), s.cache.Cached(qp)
	} else if ft, fp = s.cache.CachedPair(qt, qp); ft == nil {
		// Not both in memory: nothing was counted, and the Score that
		// follows counts each text once.
		return Outcome{}, false, nil
	}
	o.CacheTask, o.CachePattern = semcache.Memory, semcache.Memory
	var errT, errP error
	switch {
	case ft == nil && fp == nil:
		ft, fp, o.CacheTask, o.CachePattern, errT, errP = s.fetchBoth(ctx, qt, qp)
	case ft == nil:
		ft, o.CacheTask, errT = s.get(ctx, qt, "task")
	case fp == nil:
		fp, o.CachePattern, errP = s.get(ctx, qp, "pattern")
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
		span := startSimilarity(ctx)
		o.Components, o.Pattern = similarity.Compare(ft, fp, &s.cfg.Weights)
		r, err := s.cfg.Combiner.Combine(req.Vector, o.Pattern, req.Characteristics)
		if err != nil {
			endSpan(span, err)
			return Outcome{}, true, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		o.Status, o.Hybrid, o.Weights, o.Confidence, o.Agreement = Scored, r.Hybrid, r.Weights, r.Confidence, r.Agreement
		if span != nil {
			span.SetAttributes(tracing.AttrPatternScore.Float64(o.Pattern), tracing.AttrHybridScore.Float64(o.Hybrid))
			endSpan(span, nil)
		}
	}
	o.Duration = time.Since(start)
	if s.obs != nil {
		s.obs.ObserveOutcome(o)
	}
	return o, true, nil
}

// fetchBoth looks both texts up at the same time. It is apart from Score so
// that only this slow path pays for the goroutine's captured variables.
func (s *Service) fetchBoth(ctx context.Context, qt, qp analysis.Query) (ft, fp *similarity.Features, st, sp semcache.Status, errT, errP error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ft, st, errT = s.get(ctx, qt, "task")
	}()
	fp, sp, errP = s.get(ctx, qp, "pattern")
	<-done
	return
}

// get is cache.Get, inside a span when the job is traced (the caller's
// context carries a recording span; the cached path's never does).
func (s *Service) get(ctx context.Context, q analysis.Query, text string) (*similarity.Features, semcache.Status, error) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return s.cache.Get(ctx, q)
	}
	ctx, span := tracing.Tracer().Start(ctx, tracing.SpanCache, trace.WithAttributes(tracing.AttrText.String(text)))
	f, st, err := s.cache.Get(ctx, q)
	span.SetAttributes(tracing.AttrCache.String(st.String()))
	endSpan(span, err)
	return f, st, err
}

// startSimilarity starts the similarity span of a traced job; nil
// otherwise.
func startSimilarity(ctx context.Context) trace.Span {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return nil
	}
	_, span := tracing.Tracer().Start(ctx, tracing.SpanSimilarity)
	return span
}

func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
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
