package scoring_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/redistest"
	"github.com/hybridscore/hybridscore/internal/scoring"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/source"
)

// engine is the production chain: cache → breaker → HTTP client → a real
// langextract-compatible server.

func newEngine(t testing.TB, faults langextractd.Faults, cacheCfg semcache.Config, srv *langextractd.Server) (*scoring.Service, *semcache.Cache, *langextractd.Server) {
	t.Helper()
	if srv == nil {
		srv = langextractd.New(faults)
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		t.Cleanup(srv.Close)
		srvURL[srv] = hs.URL
	}
	client, err := langextract.New(langextract.Config{BaseURL: srvURL[srv], Timeout: 500 * time.Millisecond, MaxAttempts: 2, BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	br := source.NewBreaker(5, time.Minute, nil)
	cache, err := semcache.New(context.Background(), cacheCfg, source.Loader{Source: source.Guard(br, client)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	svc, err := scoring.New(cache, scoring.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc, cache, srv
}

var srvURL = map[*langextractd.Server]string{}

func TestScoredThroughLangextract(t *testing.T) {
	svc, _, srv := newEngine(t, langextractd.Faults{}, semcache.Config{}, nil)
	ctx := context.Background()
	task := "Implement OAuth2 authentication with JWT tokens"
	chars := &combiner.Characteristics{Complexity: "complex"}
	related, err := svc.Score(ctx, &scoring.Request{Task: task, Pattern: "Build user authentication using OAuth2 protocol", Vector: 0.8, Characteristics: chars})
	if err != nil {
		t.Fatal(err)
	}
	unrelated, _ := svc.Score(ctx, &scoring.Request{Task: task, Pattern: "Bake sourdough bread with a rye starter", Vector: 0.8, Characteristics: chars})
	if related.Status != scoring.Scored || unrelated.Status != scoring.Scored {
		t.Fatalf("statuses %s %s", related.Status, unrelated.Status)
	}
	if related.Hybrid <= unrelated.Hybrid || related.Pattern <= unrelated.Pattern {
		t.Fatalf("related %+v not above unrelated %+v", related, unrelated)
	}
	want := 0.8*0.6 + related.Pattern*0.4
	if math.Abs(related.Hybrid-want) > 1e-9 || !related.Weights.Adjusted {
		t.Fatalf("hybrid %v, want %v (weights %+v)", related.Hybrid, want, related.Weights)
	}
	if related.CacheTask != semcache.Miss || unrelated.CacheTask != semcache.Memory {
		t.Fatalf("cache statuses %s then %s", related.CacheTask, unrelated.CacheTask)
	}
	if srv.Calls() != 3 {
		t.Fatalf("%d langextract calls for 3 distinct texts", srv.Calls())
	}
	if _, err := svc.Score(ctx, &scoring.Request{Task: "a", Pattern: "b", Vector: 1.5}); err == nil {
		t.Fatal("vector 1.5 accepted")
	}
}

func TestDegradedReasons(t *testing.T) {
	for _, tt := range []struct {
		faults langextractd.Faults
		reason string
	}{
		{langextractd.Faults{Rate503: 1}, "unavailable"},
		{langextractd.Faults{Rate429: 1}, "rate_limited"},
		{langextractd.Faults{Malformed: 1}, "validation_error"},
		{langextractd.Faults{Rate500: 1}, "unknown"},
		{langextractd.Faults{Hang: 1}, "timeout"},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			svc, _, _ := newEngine(t, tt.faults, semcache.Config{}, nil)
			o, err := svc.Score(context.Background(), &scoring.Request{Task: "t", Pattern: "p", Vector: 0.42})
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != scoring.Degraded || o.FallbackReason != tt.reason || o.Hybrid != 0.42 || o.Weights.Vector != 1 || o.Weights.Pattern != 0 {
				t.Fatalf("outcome %+v", o)
			}
		})
	}
	// After five counted failures the breaker opens and answers at once.
	svc, _, srv := newEngine(t, langextractd.Faults{Rate500: 1}, semcache.Config{}, nil)
	for i := 0; i < 3; i++ { // each job makes two failed calls
		_, _ = svc.Score(context.Background(), &scoring.Request{Task: fmt.Sprint("t", i), Pattern: fmt.Sprint("p", i), Vector: 0.5})
	}
	before := srv.Calls()
	o, _ := svc.Score(context.Background(), &scoring.Request{Task: "x", Pattern: "y", Vector: 0.5})
	if o.FallbackReason != "circuit_breaker" || srv.Calls() != before {
		t.Fatalf("after the breaker opened: %+v, %d new calls", o, srv.Calls()-before)
	}
}

// TestCoalescingThroughLangextract is the coalescing figure: 64
// goroutines scoring 50 distinct uncached texts make exactly 50 langextract
// calls; four independent caches over one Redis make at most 55.
func TestCoalescingThroughLangextract(t *testing.T) {
	jobs := func(svcs []*scoring.Service) {
		var wg sync.WaitGroup
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				svc := svcs[g%len(svcs)]
				for j := 0; j < 25; j++ {
					a, b := (g+2*j)%50, (g+2*j+1)%50
					o, err := svc.Score(context.Background(), &scoring.Request{Task: fmt.Sprintf("task text %d about OAuth2", a), Pattern: fmt.Sprintf("task text %d about OAuth2", b), Vector: 0.5})
					if err != nil || o.Status != scoring.Scored {
						t.Errorf("score: %+v %v", o, err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	t.Run("one process", func(t *testing.T) {
		svc, _, srv := newEngine(t, langextractd.Faults{Latency: 10 * time.Millisecond}, semcache.Config{}, nil)
		jobs([]*scoring.Service{svc})
		t.Logf("langextract calls: %d for %d distinct texts", srv.Calls(), srv.Distinct())
		if srv.Calls() != 50 || srv.Distinct() != 50 {
			t.Fatalf("%d calls, want exactly 50", srv.Calls())
		}
	})
	t.Run("four caches one redis", func(t *testing.T) {
		rs := redistest.Start(t)
		var srv *langextractd.Server
		var svcs []*scoring.Service
		for i := 0; i < 4; i++ {
			var svc *scoring.Service
			svc, _, srv = newEngine(t, langextractd.Faults{Latency: 10 * time.Millisecond}, semcache.Config{Redis: rs.Client()}, srv)
			svcs = append(svcs, svc)
		}
		jobs(svcs)
		t.Logf("langextract calls: %d for %d distinct texts", srv.Calls(), srv.Distinct())
		if srv.Calls() > 55 {
			t.Fatalf("%d calls, want at most 55", srv.Calls())
		}
	})
}

func FuzzScoreNeverPanics(f *testing.F) {
	f.Add("Implement OAuth2", "Build OAuth2", 0.5, "complex", "x")
	f.Add("", "\xff", -1.0, "", "")
	f.Add("a", "a", math.NaN(), "VERY_COMPLEX", "")
	f.Fuzz(func(t *testing.T, task, pattern string, vector float64, complexity, label string) {
		cache, err := semcache.New(context.Background(), semcache.Config{MaxSize: 10}, source.Loader{Source: source.Builtin})
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Close()
		svc, _ := scoring.New(cache, scoring.DefaultConfig(), nil)
		o, err := svc.Score(context.Background(), &scoring.Request{Task: task, Pattern: pattern, Vector: vector, Characteristics: &combiner.Characteristics{Complexity: complexity, FeatureLabel: label}})
		if err != nil {
			if vector >= 0 && vector <= 1 {
				t.Fatalf("valid vector %v rejected: %v", vector, err)
			}
			return
		}
		for _, v := range []float64{o.Hybrid, o.Pattern, o.Confidence, o.Agreement, o.Weights.Vector, o.Weights.Pattern} {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("output %v out of range: %+v", v, o)
			}
		}
	})
}

// BenchmarkScoreTier1 scores a job whose two analyses are in tier 1.
func BenchmarkScoreTier1(b *testing.B) {
	cache, _ := semcache.New(context.Background(), semcache.Config{}, source.Loader{Source: source.Builtin})
	defer cache.Close()
	svc, _ := scoring.New(cache, scoring.DefaultConfig(), nil)
	req := &scoring.Request{
		Task:            "Implement OAuth2 authentication with JWT tokens for the payments API; the gateway validates signatures and caches sessions in Redis.",
		Pattern:         "Build user authentication using the OAuth2 protocol, issue refresh tokens and store sessions in a shared cache.",
		Vector:          0.83,
		Characteristics: &combiner.Characteristics{Complexity: "complex", FeatureLabel: "auth"},
	}
	ctx := context.Background()
	if o, _ := svc.Score(ctx, req); o.Status != scoring.Scored {
		b.Fatal(o.Err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if o, _ := svc.Score(ctx, req); o.CacheTask != semcache.Memory {
			b.Fatal("not a tier-1 hit")
		}
	}
}
