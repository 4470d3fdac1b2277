package semcache_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/semcache"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func get(t *testing.T, c *semcache.Cache, txt string) semcache.Status {
	t.Helper()
	_, st, err := c.Get(context.Background(), analysis.Of(txt))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Entries reused late in their life, and expiring while in use: the report
// shows it in its distributions and recommends a longer TTL.
func TestReportRaiseTTL(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	c, _ := semcache.New(context.Background(), semcache.Config{MaxSize: 1000, TTL: time.Hour, Now: clk.Now}, newLoader(0))
	defer c.Close()
	for i := range 100 {
		get(t, c, text(i))
	}
	clk.Add(50 * time.Minute) // the last quarter of the TTL
	for i := range 100 {
		if st := get(t, c, text(i)); st != semcache.Memory {
			t.Fatalf("text %d: %s", i, st)
		}
	}
	clk.Add(11 * time.Minute) // now all expired, having been reused once
	for i := range 10 {
		if st := get(t, c, text(i)); st != semcache.Miss {
			t.Fatalf("expired text %d answered %s", i, st)
		}
	}
	r := c.Report()
	if r.HitsLate != 100 || r.Expired != 100 || r.ExpiredUnused != 0 || r.Evicted != 0 {
		t.Fatalf("late %d expired %d unused %d evicted %d", r.HitsLate, r.Expired, r.ExpiredUnused, r.Evicted)
	}
	if b := r.AgeAtHitSeconds[5]; b.LE != 3600 || b.Count != 100 {
		t.Fatalf("age at hit %+v, want 100 hits in the bucket up to 1 h", r.AgeAtHitSeconds)
	}
	if r.Reuse[1].Count != 10 { // the ten found expired had one hit each
		t.Fatalf("reuse %+v", r.Reuse)
	}
	if r.RecommendedTTLSeconds != 7200 || !strings.Contains(r.Recommendation[0], "raise SEMANTIC_CACHE_TTL_SECONDS to 7200") {
		t.Fatalf("recommendation %q, TTL %v", r.Recommendation, r.RecommendedTTLSeconds)
	}
	var sb strings.Builder
	if err := r.WriteText(&sb); err != nil || !strings.Contains(sb.String(), "expired 100 (0 never reused)") {
		t.Fatalf("text report:\n%s", sb.String())
	}
}

// A cache too small for its working set evicts live entries: raise the size.
// Entries never asked for again: lower the TTL to when hits really come.
func TestReportRaiseSizeAndLowerTTL(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	small, _ := semcache.New(context.Background(), semcache.Config{MaxSize: 50, TTL: time.Hour, Now: clk.Now}, newLoader(0))
	defer small.Close()
	for range 3 {
		for i := range 100 {
			get(t, small, text(i))
			clk.Add(time.Second)
		}
	}
	r := small.Report()
	if r.Evicted != 250 || r.RecommendedMaxSize != 75 || !strings.Contains(strings.Join(r.Recommendation, "\n"), "raise SEMANTIC_CACHE_MAX_SIZE to 75") {
		t.Fatalf("evicted %d, size %d, %q", r.Evicted, r.RecommendedMaxSize, r.Recommendation)
	}
	if r.AgeAtEvictionSeconds[1].Count != 250 { // evicted 50 s after store: the bucket up to a minute
		t.Fatalf("age at eviction %+v", r.AgeAtEvictionSeconds)
	}

	clk2 := &clock{now: time.Unix(1_000_000, 0)}
	big, _ := semcache.New(context.Background(), semcache.Config{MaxSize: 10000, TTL: time.Hour, Now: clk2.Now}, newLoader(0))
	defer big.Close()
	for i := range 200 {
		get(t, big, text(i))
	}
	clk2.Add(5 * time.Second)
	for i := range 20 {
		get(t, big, text(i)) // reused early, 5 s after the analysis
	}
	clk2.Add(2 * time.Hour)
	r = big.Report()
	if r.Expired != 200 || r.ExpiredUnused != 180 {
		t.Fatalf("expired %d unused %d", r.Expired, r.ExpiredUnused)
	}
	if r.RecommendedTTLSeconds != 60 || !strings.Contains(r.Recommendation[0], "lower SEMANTIC_CACHE_TTL_SECONDS to 60") {
		t.Fatalf("recommendation %q", r.Recommendation)
	}
}

func TestReportNeedsEvidence(t *testing.T) {
	c, _ := semcache.New(context.Background(), semcache.Config{}, newLoader(0))
	defer c.Close()
	get(t, c, "one")
	if r := c.Report(); !strings.HasPrefix(r.Recommendation[0], "keep: only 1 lookups") {
		t.Fatalf("%q", r.Recommendation)
	}
}

// Export gives back what was analysed, most recent first, ready to warm
// another cache that then answers from memory without analysing.
func TestExportWarmsAnotherCache(t *testing.T) {
	a, _ := semcache.New(context.Background(), semcache.Config{}, newLoader(0))
	defer a.Close()
	for i := range 5 {
		get(t, a, text(i))
	}
	fr := analysis.Query{Text: "Déployer en production", Language: "fr", Context: "pattern_matching"}
	if _, _, err := a.Get(context.Background(), fr); err != nil {
		t.Fatal(err)
	}
	qs := a.Export()
	if len(qs) != 6 || qs[0] != fr || qs[5].Text != text(0) {
		t.Fatalf("export %v", qs)
	}
	l := newLoader(0)
	b, _ := semcache.New(context.Background(), semcache.Config{}, l)
	defer b.Close()
	if n, err := b.Warm(context.Background(), qs); n != 6 || err != nil {
		t.Fatalf("warmed %d, %v", n, err)
	}
	for _, q := range qs {
		if _, st, _ := b.Get(context.Background(), q); st != semcache.Memory {
			t.Fatalf("%v: %s after warming", q, st)
		}
	}
	if l.calls.Load() != 6 {
		t.Fatalf("%d analyses, want 6", l.calls.Load())
	}
}
