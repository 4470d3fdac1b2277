package semcache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/redistest"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// countingLoader runs the built-in analyzer after a delay and counts calls.
type countingLoader struct {
	delay time.Duration
	calls atomic.Int64
	mu    sync.Mutex
	per   map[string]int
	fail  atomic.Pointer[error]
}

func newLoader(delay time.Duration) *countingLoader {
	return &countingLoader{delay: delay, per: map[string]int{}}
}

func (l *countingLoader) Load(ctx context.Context, q analysis.Query) (*similarity.Features, error) {
	l.calls.Add(1)
	l.mu.Lock()
	l.per[q.Text]++
	l.mu.Unlock()
	if l.delay > 0 {
		select {
		case <-time.After(l.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e := l.fail.Load(); e != nil {
		return nil, *e
	}
	return analyzer.Analyze(q.Text, q.Language, q.Context).Features(), nil
}

// q is the query of txt in the test context "c".
func q(txt string) analysis.Query { return analysis.Query{Text: txt, Language: "en", Context: "c"} }

func text(i int) string {
	return fmt.Sprintf("Pattern %d: implement OAuth2 authentication with JWT tokens for service %d and cache sessions in Redis", i, i)
}

func TestLRUEvictionTTLAndMetrics(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	l := newLoader(0)
	c, err := semcache.New(context.Background(), semcache.Config{MaxSize: 3, TTL: time.Minute, Now: clock}, l)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	get := func(i int) semcache.Status {
		t.Helper()
		_, st, err := c.Get(ctx, analysis.Of(text(i)))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for i := 0; i < 3; i++ {
		if st := get(i); st != semcache.Miss {
			t.Fatalf("first lookup of %d: %s", i, st)
		}
	}
	if st := get(0); st != semcache.Memory { // 0 becomes most recent
		t.Fatalf("second lookup: %s", st)
	}
	get(3) // evicts 1, the least recently used
	if st := get(1); st != semcache.Miss {
		t.Fatalf("evicted entry answered %s", st)
	}
	m := c.Metrics()
	if m.Evictions != 2 || m.CurrentSize != 3 || m.MaxSize != 3 || m.TTLSeconds != 60 || m.Hits != 1 || m.Misses != 5 || m.TotalRequests != 6 {
		t.Fatalf("metrics %+v", m)
	}
	if m.MemoryBytes <= 0 || m.HitRate != 1.0/6 {
		t.Fatalf("metrics %+v", m)
	}
	clockMu.Lock()
	now = now.Add(61 * time.Second)
	clockMu.Unlock()
	if st := get(0); st != semcache.Miss {
		t.Fatalf("expired entry answered %s", st)
	}
	if c.Metrics().Expirations != 1 {
		t.Fatalf("expirations %d", c.Metrics().Expirations)
	}
}

// CachedPair answers both texts from memory and counts a hit for each, or
// answers nothing and counts nothing, so the lookup that follows a miss is
// not counted twice; an expired text is removed as by any lookup, and a
// pair refreshes both texts' place in the LRU.
func TestCachedPairCountsBothOrNothing(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	c, err := semcache.New(context.Background(), semcache.Config{MaxSize: 3, TTL: time.Minute, Now: clock}, newLoader(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	a, b, other := analysis.Of(text(1)), analysis.Of(text(2)), analysis.Of(text(3))
	if fa, fb := c.CachedPair(a, b); fa != nil || fb != nil {
		t.Fatal("an empty cache answered a pair")
	}
	want, _, err := c.Get(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if fa, fb := c.CachedPair(a, b); fa != nil || fb != nil {
		t.Fatal("a pair with one text missing was answered")
	}
	if m := c.Metrics(); m.Hits != 0 || m.Misses != 1 {
		t.Fatalf("after a half-missing pair: %d hits, %d misses; want 0 and 1", m.Hits, m.Misses)
	}
	if _, _, err := c.Get(ctx, b); err != nil {
		t.Fatal(err)
	}
	fa, fb := c.CachedPair(a, b)
	if fa != want || fb == nil || fb == fa {
		t.Fatalf("pair answered %p %p, want %p and b's own", fa, fb, want)
	}
	if m := c.Metrics(); m.Hits != 2 || m.MemoryHits != 2 || m.Misses != 2 {
		t.Fatalf("after a pair from memory: %+v", m)
	}
	// A third text fills the cache; the pair, used after it, is then more
	// recent, so a fourth text evicts the third.
	if _, _, err := c.Get(ctx, other); err != nil {
		t.Fatal(err)
	}
	if fa, _ := c.CachedPair(a, b); fa == nil {
		t.Fatal("the pair is gone from a cache of three holding three texts")
	}
	if _, _, err := c.Get(ctx, analysis.Of(text(4))); err != nil {
		t.Fatal(err)
	}
	if fa, _ := c.CachedPair(a, b); fa == nil {
		t.Fatal("a fourth text evicted a text of the pair, not the least recently used")
	}
	// other, evicted by the fourth text, comes back in place of the least
	// recently used: the fourth text, not a text of the pair.
	if _, st, err := c.Get(ctx, other); err != nil || st != semcache.Miss {
		t.Fatalf("the evicted third text: %s %v", st, err)
	}
	clockMu.Lock()
	now = now.Add(61 * time.Second)
	clockMu.Unlock()
	if fa, fb := c.CachedPair(a, b); fa != nil || fb != nil {
		t.Fatal("an expired pair was answered")
	}
	if m := c.Metrics(); m.Expirations != 2 || m.Evictions != 2 || m.CurrentSize != 1 {
		t.Fatalf("after the pair expired: %d expirations, %d evictions, %d entries; want 2, 2 and 1", m.Expirations, m.Evictions, m.CurrentSize)
	}
}

func TestLoaderErrorsAndPanicsAreReturned(t *testing.T) {
	boom := errors.New("boom")
	l := newLoader(0)
	l.fail.Store(&boom)
	c, _ := semcache.New(context.Background(), semcache.Config{}, l)
	defer c.Close()
	if _, _, err := c.Get(context.Background(), q("x")); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	p, _ := semcache.New(context.Background(), semcache.Config{}, semcache.LoaderFunc(func(context.Context, analysis.Query) (*similarity.Features, error) {
		panic("hostile analyzer")
	}))
	defer p.Close()
	if _, _, err := p.Get(context.Background(), q("x")); err == nil {
		t.Fatal("a panicking loader gave no error")
	}
}

// hammer has g goroutines look up n texts each, in rotated orders.
func hammer(t testing.TB, caches []*semcache.Cache, g, n int) map[semcache.Status]int {
	var mu sync.Mutex
	statuses := map[semcache.Status]int{}
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := caches[i%len(caches)]
			for j := 0; j < n; j++ {
				_, st, err := c.Get(context.Background(), analysis.Of(text((i+j)%n)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statuses
}

func TestCoalescingInProcess(t *testing.T) {
	l := newLoader(20 * time.Millisecond)
	c, _ := semcache.New(context.Background(), semcache.Config{}, l)
	defer c.Close()
	st := hammer(t, []*semcache.Cache{c}, 64, 50)
	if got := l.calls.Load(); got != 50 {
		t.Fatalf("64 goroutines × 50 texts made %d loads, want exactly 50", got)
	}
	if st[semcache.Miss] != 50 || st[semcache.Shared] == 0 {
		t.Fatalf("statuses %v", st)
	}
}

func newRedisCache(t testing.TB, srv *redistest.Server, l *countingLoader, cfg semcache.Config) *semcache.Cache {
	t.Helper()
	cfg.Redis = srv.Client()
	if cfg.ReconnectInterval == 0 {
		cfg.ReconnectInterval = 50 * time.Millisecond
	}
	c, err := semcache.New(context.Background(), cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCoalescingAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	l := newLoader(20 * time.Millisecond)
	var caches []*semcache.Cache
	for i := 0; i < 4; i++ {
		caches = append(caches, newRedisCache(t, srv, l, semcache.Config{}))
	}
	st := hammer(t, caches, 64, 50)
	got := l.calls.Load()
	t.Logf("4 caches, 64 goroutines, 50 texts: %d loads, statuses %v", got, st)
	if got > 55 || got < 50 {
		t.Fatalf("%d loads, want 50..55", got)
	}
	if st[semcache.Shared] == 0 {
		t.Fatalf("no lookup waited on another's load: %v", st)
	}
}

func TestRedisTierSharedAndCompact(t *testing.T) {
	srv := redistest.Start(t)
	l := newLoader(0)
	a := newRedisCache(t, srv, l, semcache.Config{})
	b := newRedisCache(t, srv, l, semcache.Config{})
	ctx := context.Background()
	txt := text(7)
	if _, st, _ := a.Get(ctx, q(txt)); st != semcache.Miss {
		t.Fatalf("a: %s", st)
	}
	if _, st, _ := b.Get(ctx, q(txt)); st != semcache.Redis {
		t.Fatalf("b: %s, want redis", st)
	}
	if _, st, _ := b.Get(ctx, q(txt)); st != semcache.Memory {
		t.Fatalf("b again: %s, want memory", st)
	}
	if l.calls.Load() != 1 {
		t.Fatalf("%d loads", l.calls.Load())
	}
	key := "hybridscore:sem:" + semcache.KeyOf(q(txt)).String()
	n, err := srv.Client().StrLen(ctx, key).Result()
	if err != nil || n == 0 || n > 1536 {
		t.Fatalf("redis value %d bytes (err %v), want 1..1536", n, err)
	}
	ttl := srv.Client().TTL(ctx, key).Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("redis TTL %s", ttl)
	}
	// Garbage in Redis is a miss, then overwritten.
	garbage := text(8)
	gkey := "hybridscore:sem:" + semcache.KeyOf(q(garbage)).String()
	srv.Client().Set(ctx, gkey, "not features", time.Minute)
	if _, st, err := a.Get(ctx, q(garbage)); err != nil || st != semcache.Miss {
		t.Fatalf("garbage: %s %v", st, err)
	}
	if _, st, _ := b.Get(ctx, q(garbage)); st != semcache.Redis {
		t.Fatalf("after overwrite: %s", st)
	}
	if !a.RedisUp() || !a.Metrics().RedisEnabled {
		t.Fatal("redis reported down")
	}
}

func TestRedisOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	l := newLoader(0)
	var states []bool
	var mu sync.Mutex
	c := newRedisCache(t, srv, l, semcache.Config{OnRedisState: func(up bool, _ error) { mu.Lock(); states = append(states, up); mu.Unlock() }})
	ctx := context.Background()
	if _, _, err := c.Get(ctx, q(text(1))); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for i := 2; i < 20; i++ {
		if _, _, err := c.Get(ctx, q(text(i))); err != nil {
			t.Fatalf("lookup during outage: %v", err)
		}
	}
	if c.RedisUp() {
		t.Fatal("redis still reported up while stopped")
	}
	if _, st, _ := c.Get(ctx, q(text(1))); st != semcache.Memory {
		t.Fatalf("memory tier lost during outage: %s", st)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for !c.RedisUp() {
		if time.Now().After(deadline) {
			t.Fatal("cache never went back to Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, st, err := c.Get(ctx, q(text(100))); err != nil || st != semcache.Miss {
		t.Fatalf("after recovery: %s %v", st, err)
	}
	other := newRedisCache(t, srv, newLoader(0), semcache.Config{})
	if _, st, _ := other.Get(ctx, q(text(100))); st != semcache.Redis {
		t.Fatalf("value written after recovery not in Redis: %s", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] || !states[1] {
		t.Fatalf("state changes %v, want [false true]", states)
	}
}

func TestDeadLeaseHolderIsReplaced(t *testing.T) {
	srv := redistest.Start(t)
	l := newLoader(0)
	c := newRedisCache(t, srv, l, semcache.Config{LeaseTTL: 300 * time.Millisecond})
	ctx := context.Background()
	txt := text(42)
	// A worker that took the lease and died: the lease is there, no value ever comes.
	lease := "hybridscore:sem:lease:" + semcache.KeyOf(q(txt)).String()
	if err := srv.Client().Set(ctx, lease, "dead-worker", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, st, err := c.Get(ctx, q(txt))
	if err != nil || st != semcache.Miss || l.calls.Load() != 1 {
		t.Fatalf("status %s err %v loads %d", st, err, l.calls.Load())
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("took over after %s, want about the lease TTL", waited)
	}
}

func TestWarm(t *testing.T) {
	l := newLoader(0)
	c, _ := semcache.New(context.Background(), semcache.Config{}, l)
	defer c.Close()
	texts := []string{text(1), text(2), text(3), text(1)}
	n, err := c.Warm(context.Background(), analysis.Texts(texts, analysis.Query{}))
	if err != nil || n != 4 {
		t.Fatalf("Warm = %d, %v", n, err)
	}
	if m := c.Metrics(); m.Hits != 0 || m.Misses != 0 || m.TotalRequests != 0 {
		t.Fatalf("a warm-up counted as lookups: %+v", m)
	}
	// Warming what is cached already loads nothing and counts nothing: no
	// lookup, no hit, no hit in an entry's life (cache report's ages at
	// hit).
	if n, err := c.Warm(context.Background(), analysis.Texts(texts, analysis.Query{})); err != nil || n != 4 || l.calls.Load() != 3 {
		t.Fatalf("Warm again = %d, %v, %d loads", n, err, l.calls.Load())
	}
	if m, r := c.Metrics(), c.Report(); m.TotalRequests != 0 || bucketsTotal(r.AgeAtHitSeconds) != 0 {
		t.Fatalf("warming cached texts counted: %+v, ages at hit %v", m, r.AgeAtHitSeconds)
	}
	if f := c.Cached(analysis.Of(text(2))); f == nil {
		t.Fatal("warmed text not cached")
	}
	if m := c.Metrics(); m.Hits != 1 || m.TotalRequests != 1 {
		t.Fatalf("a job's lookup after the warm-up: %+v", m)
	}
}

func bucketsTotal(bs []semcache.Bucket) (n uint64) {
	for _, b := range bs {
		n += b.Count
	}
	return n
}

// BenchmarkEntryBytes measures the heap held per tier-1 entry for the
// analysis of a 300-character text, and the size of its Redis value.
func BenchmarkEntryBytes(b *testing.B) {
	base := "Implement OAuth2 authentication with JWT tokens for the payments API; the gateway uses Redis to cache sessions, validates signatures and depends on the identity service. 1. Issue tokens 2. Refresh tokens. Document the flow, rotate keys monthly, and measure latency under load for service"
	const n = 20000
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("%05d %s %s", i, base, base)[:300]
	}
	load := semcache.LoaderFunc(func(_ context.Context, q analysis.Query) (*similarity.Features, error) {
		return analyzer.Analyze(q.Text, q.Language, q.Context).Features(), nil
	})
	enc, _ := analyzer.Analyze(texts[0], "en", "pattern_matching").Features().MarshalBinary()
	for b.Loop() {
		c, _ := semcache.New(context.Background(), semcache.Config{MaxSize: n}, load)
		before := heap()
		for _, t := range texts {
			_, _, _ = c.Get(context.Background(), analysis.Of(t))
		}
		after := heap()
		b.ReportMetric(float64(after-before)/n, "heap-B/entry")
		b.ReportMetric(float64(c.Metrics().MemoryBytes)/n, "accounted-B/entry")
		b.ReportMetric(float64(len(enc)), "redis-B/value")
		c.Close()
	}
}

// A Redis that stops answering (DEBUG SLEEP blocks its only thread) costs a
// lookup at most the Redis timeout: it is answered, Redis is reported down,
// and the cache goes back to Redis once it answers again.
func TestSlowRedisNeverFailsALookup(t *testing.T) {
	srv := redistest.Start(t)
	l := newLoader(0)
	c := newRedisCache(t, srv, l, semcache.Config{RedisTimeout: 50 * time.Millisecond})
	stalled := stall(srv, "1")
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_, st, err := c.Get(context.Background(), q(text(500)))
	if err != nil || st != semcache.Miss {
		t.Fatalf("lookup against a stalled Redis: %s %v", st, err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("lookup took %s with a 50 ms Redis timeout", took)
	}
	// A timeout is confirmed by a ping of four timeouts (200 ms here),
	// well inside the one-second stall.
	for c.RedisUp() {
		select {
		case err := <-stalled:
			t.Fatalf("a stalled Redis was reported up for the whole stall (%v)", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := <-stalled; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !c.RedisUp() {
		if time.Now().After(deadline) {
			t.Fatal("never went back to Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stall shorter than the ping that confirms a timeout (a busy machine,
// a slow fork for a snapshot) costs the lookups that timed out their Redis
// answer, not the shared tier: Redis is never reported down, and the next
// lookups use it again.
func TestBriefRedisStallKeepsTheSharedTier(t *testing.T) {
	srv := redistest.Start(t)
	var mu sync.Mutex
	var downs []error
	c := newRedisCache(t, srv, newLoader(0), semcache.Config{RedisTimeout: 50 * time.Millisecond,
		OnRedisState: func(up bool, cause error) {
			if !up {
				mu.Lock()
				downs = append(downs, cause)
				mu.Unlock()
			}
		}})
	stalled := stall(srv, "0.12")
	time.Sleep(20 * time.Millisecond)
	if _, st, err := c.Get(context.Background(), q(text(600))); err != nil || st != semcache.Miss {
		t.Fatalf("lookup during the stall: %s %v", st, err)
	}
	if err := <-stalled; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the confirming ping (200 ms) has ended
	mu.Lock()
	defer mu.Unlock()
	if len(downs) > 0 || !c.RedisUp() {
		t.Fatalf("a 120 ms stall marked Redis down (%v)", downs)
	}
	if _, st, err := c.Get(context.Background(), q(text(601))); err != nil || st != semcache.Miss {
		t.Fatalf("a new text after the stall: %s %v", st, err)
	}
	other := newRedisCache(t, srv, newLoader(0), semcache.Config{})
	if _, st, err := other.Get(context.Background(), q(text(601))); err != nil || st != semcache.Redis {
		t.Fatalf("another process, a text looked up after the stall: %s %v (it should be in Redis)", st, err)
	}
}

// stall blocks Redis's only thread for seconds (DEBUG SLEEP) and reports
// the command's error once Redis answers again.
func stall(srv *redistest.Server, seconds string) <-chan error {
	stalled := make(chan error, 1)
	go func() {
		slow := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: 5 * time.Second})
		defer slow.Close()
		stalled <- slow.Do(context.Background(), "DEBUG", "SLEEP", seconds).Err()
	}()
	return stalled
}

// An idle cache notices an outage too: nothing has to fail first.
func TestIdleCacheNoticesRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	c := newRedisCache(t, srv, newLoader(0), semcache.Config{})
	if !c.RedisUp() {
		t.Fatal("redis down at start")
	}
	srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for c.RedisUp() {
		if time.Now().After(deadline) {
			t.Fatal("an idle cache still reports Redis up after it stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Restart()
	for !c.RedisUp() {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("never back up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// After Redis restarts, the client's pool still holds connections to the
// old process. Lookups must use Redis again at once, not fail on each stale
// connection and flap the tier down.
func TestRedisUsedAgainAfterRestartWithoutFlapping(t *testing.T) {
	srv := redistest.Start(t)
	var downs atomic.Int64
	cfg := semcache.Config{OnRedisState: func(up bool, _ error) {
		if !up {
			downs.Add(1)
		}
	}}
	writer := newRedisCache(t, srv, newLoader(0), semcache.Config{})
	reader := newRedisCache(t, srv, newLoader(0), cfg)
	hammer(t, []*semcache.Cache{reader}, 32, 20) // fills the reader's pool with connections
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for !reader.RedisUp() || !writer.RedisUp() {
		if time.Now().After(deadline) {
			t.Fatalf("reader up %v, writer up %v, downs %d", reader.RedisUp(), writer.RedisUp(), downs.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	downs.Store(0)
	for i := 1000; i < 1040; i++ {
		if _, _, err := writer.Get(context.Background(), q(text(i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var fromRedis atomic.Int64
	for i := 1000; i < 1040; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, st, _ := reader.Get(context.Background(), q(text(i))); st == semcache.Redis {
				fromRedis.Add(1)
			}
		}()
	}
	wg.Wait()
	if fromRedis.Load() != 40 || downs.Load() != 0 {
		t.Fatalf("after the restart: %d of 40 lookups from Redis, tier marked down %d times", fromRedis.Load(), downs.Load())
	}
}

// A holder whose lease was taken over (it paused longer than the lease)
// neither renews nor deletes the new owner's lease.
func TestLeaseIsRenewedAndReleasedByItsOwnerOnly(t *testing.T) {
	srv := redistest.Start(t)
	l := newLoader(900 * time.Millisecond) // three renewals at TTL/3
	c := newRedisCache(t, srv, l, semcache.Config{LeaseTTL: 300 * time.Millisecond})
	ctx := context.Background()
	txt := text(7)
	lease := "hybridscore:sem:lease:" + semcache.KeyOf(q(txt)).String()
	done := make(chan error, 1)
	go func() { _, _, err := c.Get(ctx, q(txt)); done <- err }()
	rc := srv.Client()
	deadline := time.Now().Add(5 * time.Second)
	for rc.Exists(ctx, lease).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("lease never taken")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := rc.Set(ctx, lease, "another-worker", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := rc.Get(ctx, lease).Val(); v != "another-worker" {
		t.Fatalf("lease %q after the old holder finished, want the new owner's", v)
	}
	if ttl := rc.PTTL(ctx, lease).Val(); ttl < 5*time.Second {
		t.Fatalf("the old holder cut the new owner's lease to %s", ttl)
	}
}

func TestKeysOfDifferentQueriesDiffer(t *testing.T) {
	a := analysis.Query{Language: "en\x00x", Context: "y", Text: "t"}
	b := analysis.Query{Language: "en", Context: "x\x00y", Text: "t"}
	if semcache.KeyOf(a) == semcache.KeyOf(b) {
		t.Fatal("a NUL moved between fields leaves the key unchanged")
	}
	if semcache.KeyOf(a) != semcache.KeyOf(a) {
		t.Fatal("keys are not stable")
	}
}
