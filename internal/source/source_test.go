package source_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/breaker"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/similarity"
	"github.com/hybridscore/hybridscore/internal/source"
)

// The built-in source and a real langextract-compatible server behind the
// breaker give the same features for the same query.
func TestLoaderSameFeaturesFromEitherSource(t *testing.T) {
	srv := langextractd.New(langextractd.Faults{})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	client, err := langextract.New(langextract.Config{BaseURL: hs.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q := analysis.Of("Implement OAuth2 authentication with JWT tokens")
	remote, err := source.Loader{Source: source.Guard(source.NewBreaker(1, time.Minute, nil), client)}.Load(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	local, err := source.Loader{Source: source.Builtin}.Load(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if _, s := similarity.Compare(remote, local, &similarity.DefaultWeights); s != 1 {
		t.Fatalf("remote and built-in features differ: similarity %v", s)
	}
	if srv.Calls() != 1 {
		t.Fatalf("server saw %d calls, want 1", srv.Calls())
	}
}

// Once open, the breaker answers ErrCircuitOpen without calling the source;
// a caller giving up is not the source's failure and never opens it.
func TestGuard(t *testing.T) {
	calls := 0
	failing := source.Func(func(ctx context.Context, q analysis.Query) (*langextract.Analysis, error) {
		calls++
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, langextract.ErrUnavailable
	})
	br := source.NewBreaker(2, time.Minute, nil)
	g := source.Guard(br, failing)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		if _, err := g.Analyze(cancelled, analysis.Of("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	}
	if br.State() != breaker.Closed {
		t.Fatalf("cancelled calls opened the breaker")
	}
	for range 2 {
		_, _ = g.Analyze(context.Background(), analysis.Of("x"))
	}
	before := calls
	if _, err := g.Analyze(context.Background(), analysis.Of("x")); !errors.Is(err, langextract.ErrCircuitOpen) {
		t.Fatalf("err %v, want ErrCircuitOpen", err)
	}
	if calls != before || br.State() != breaker.Open {
		t.Fatalf("open breaker called the source (%d calls) or is %s", calls-before, br.State())
	}
}

func TestBuiltinHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := source.Builtin.Analyze(ctx, analysis.Of("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func Example() {
	// The worker's chain without a langextract service: the built-in
	// analyzer, reduced to features for the cache.
	load := source.Loader{Source: source.Builtin}
	f, _ := load.Load(context.Background(), analysis.Of("Deploy to production environment"))
	want := analyzer.Analyze("Deploy to production environment", "en", "pattern_matching").Features()
	_, s := similarity.Compare(f, want, &similarity.DefaultWeights)
	fmt.Println(s == 1)
	// Output: true
}
