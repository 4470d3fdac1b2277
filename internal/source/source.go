// Package source provides the semantic analyses the scoring engine compares:
// the built-in analyzer in process, or a langextract service behind the
// circuit breaker. Loader turns either into what the cache loads on a miss,
// so the cache and the engine know nothing of where analyses come from.
package source

import (
	"context"
	"time"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/breaker"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// Source analyses one query. *langextract.Client is one.
type Source interface {
	Analyze(ctx context.Context, q analysis.Query) (*langextract.Analysis, error)
}

// Func is a function that is a Source.
type Func func(ctx context.Context, q analysis.Query) (*langextract.Analysis, error)

// Analyze calls f.
func (f Func) Analyze(ctx context.Context, q analysis.Query) (*langextract.Analysis, error) {
	return f(ctx, q)
}

// Builtin analyses in process with the built-in analyzer: the default when
// no langextract service is configured. It never fails but for ctx ending.
var Builtin Source = Func(func(ctx context.Context, q analysis.Query) (*langextract.Analysis, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return analyzer.Analyze(q.Text, q.Language, q.Context), nil
})

// Guard puts s behind b. The breaker counts the failures langextract says
// count (langextract.CountsAsFailure) and, when open, answers
// langextract.ErrCircuitOpen without calling s.
func Guard(b *breaker.Breaker[*langextract.Analysis], s Source) Source {
	return Func(func(ctx context.Context, q analysis.Query) (*langextract.Analysis, error) {
		return b.Do(func() (*langextract.Analysis, error) { return s.Analyze(ctx, q) })
	})
}

// NewBreaker returns the per-process langextract breaker: open after
// threshold consecutive counted failures, half-open after timeout.
func NewBreaker(threshold uint32, timeout time.Duration, onState func(from, to breaker.State)) *breaker.Breaker[*langextract.Analysis] {
	return breaker.New[*langextract.Analysis](breaker.Config{
		Name: "langextract", Threshold: threshold, Timeout: timeout,
		Counts: langextract.CountsAsFailure, OnStateChange: onState, OpenError: langextract.ErrCircuitOpen,
	})
}

// Loader reduces the analyses of a Source to the features the cache keeps
// and the engine compares. It is a semcache.Loader.
type Loader struct{ Source Source }

// Load analyses q and returns its features.
func (l Loader) Load(ctx context.Context, q analysis.Query) (*similarity.Features, error) {
	a, err := l.Source.Analyze(ctx, q)
	if err != nil {
		return nil, err
	}
	return a.Features(), nil
}
