//go:build containers

package integration

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// TestRedisOutageMidBatch stops the Redis container while two workers score a
// batch: results keep coming (every job gets exactly one stored result, all
// scored, the batch finishing with Redis still down), /health turns
// "degraded" with redis "unhealthy" and /metrics shows redis_up 0. Redis is
// then started again (the same container, reached through its network alias)
// and the workers go back to it: redis_up 1, /health healthy, and a new batch
// finds texts in the Redis tier (results with cache "redis" and a higher
// semantic_cache_tier_hits_total{tier="redis"}).
func TestRedisOutageMidBatch(t *testing.T) {
	s := newStack(t, 3*time.Minute)
	n := s.startNATS("nats", natsArgs())
	redis := s.startRedis()
	s.startLangextract(100 * time.Millisecond)
	env := map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "6379", "LANGEXTRACT_URL": "http://langextract:8156"}
	w1 := s.startWorker("w1", env)
	w2 := s.startWorker("w2", env)
	workers := []*workerProc{w1, w2}
	c := connect(t, s.endpoint(n, "4222/tcp", "nats"))
	ctx := s.ctx

	for _, w := range workers {
		eventually.NoError(t, 15*time.Second, healthIs(w, "healthy", "healthy", 1), "%s healthy with Redis up", w.ID)
	}

	// Batch 1: 500 jobs with texts of their own; Redis goes away after a
	// quarter of them.
	const lane = "redis"
	batch1 := distinctJobs("redis1", 500)
	c.publish(ctx, lane, batch1)
	c.waitStored(ctx, lane, len(batch1)/4, time.Minute)
	before, _ := c.stored(ctx, lane)
	ipBefore, _ := redis.ContainerIP(ctx)
	stopTimeout := 2 * time.Second
	if err := redis.Stop(ctx, &stopTimeout); err != nil {
		t.Fatalf("stop redis: %v", err)
	}
	t.Logf("redis stopped after %d of %d results", before, len(batch1))
	for _, w := range workers {
		eventually.NoError(t, 20*time.Second, healthIs(w, "degraded", "unhealthy", 0), "%s degraded with Redis unhealthy and redis_up 0", w.ID)
	}
	rep, _, _ := w1.health()
	if !slices.Contains(rep.Warnings, "Redis unavailable - using in-memory cache only") {
		t.Errorf("/health warnings %q lack the Redis warning", rep.Warnings)
	}
	took := c.waitDone(ctx, lane, len(batch1), 2*time.Minute)
	if st, err := redis.State(ctx); err != nil || st.Running {
		t.Fatalf("redis running=%v (%v) before batch 1 finished: the outage did not last", st != nil && st.Running, err)
	}
	rs := exactlyOnce(t, batch1, c.results(ctx, lane))
	requireScored(t, rs)
	t.Logf("batch 1: %d results stored after Redis was stopped; the batch finished %s after the outage was seen, Redis still down", len(batch1)-int(before), took.Round(time.Millisecond))

	// Redis back: same container, new process, empty (no persistence), and
	// on another address: a container started meanwhile takes the old one,
	// as happens on a busy Docker network. The workers' pooled connections
	// to the old address then time out instead of failing.
	s.run("squatter", redisImage, testcontainers.WithCmd("redis-server", "--protected-mode", "no", "--port", "6379", "--save", ""),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections").WithStartupTimeout(30*time.Second)))
	if err := redis.Start(ctx); err != nil {
		t.Fatalf("start redis again: %v", err)
	}
	ipAfter, _ := redis.ContainerIP(ctx)
	t.Logf("redis address %s before the outage, %s after", ipBefore, ipAfter)
	for _, w := range workers {
		eventually.NoError(t, 45*time.Second, healthIs(w, "healthy", "healthy", 1), "%s healthy with Redis up again", w.ID)
	}
	hitsBefore := redisHits(t, workers)

	// Batch 2: 200 jobs over 40 fresh texts of each kind, shuffled, so that a
	// text one worker stored in Redis is later needed by the other.
	rng := rand.New(rand.NewPCG(7, 7))
	batch2 := make([]job.Wire, 200)
	for i := range batch2 {
		batch2[i] = job.Wire{JobID: fmt.Sprintf("redis2-%04d", i), TaskDescription: taskText("redis2", rng.IntN(40)),
			HistoricalPatternText: patternText("redis2", rng.IntN(40)), VectorSimilarity: 0.5}
	}
	const lane2 = "redis-back"
	c.publish(ctx, lane2, batch2)
	c.waitDone(ctx, lane2, len(batch2), 2*time.Minute)
	rs2 := exactlyOnce(t, batch2, c.results(ctx, lane2))
	requireScored(t, rs2)
	fromRedis := 0
	for _, r := range rs2 {
		if r.Cache != nil && (r.Cache.Task == "redis" || r.Cache.Pattern == "redis") {
			fromRedis++
		}
	}
	hitsAfter := redisHits(t, workers)
	t.Logf("batch 2 after Redis returned: %d of %d results used the Redis tier; semantic_cache_tier_hits_total{tier=\"redis\"} %v -> %v",
		fromRedis, len(batch2), hitsBefore, hitsAfter)
	if fromRedis == 0 || hitsAfter <= hitsBefore {
		t.Errorf("the Redis tier was not used again after Redis returned (results from redis %d, tier hits %v -> %v)", fromRedis, hitsBefore, hitsAfter)
	}
}

// healthIs is a condition for eventually.NoError: /health has the status
// and redis component given, and /metrics has redis_up == up.
func healthIs(w *workerProc, status, redis string, up float64) func() error {
	return func() error {
		rep, code, err := w.health()
		if err != nil {
			return err
		}
		v, ok, err := w.metric("redis_up", "")
		if err != nil {
			return err
		}
		if code != http.StatusOK || rep.Status != status || rep.Components["redis"] != redis || !ok || v != up {
			return fmt.Errorf("HTTP %d, status %s, components %v, redis_up %v (present %v)", code, rep.Status, rep.Components, v, ok)
		}
		return nil
	}
}

// redisHits sums semantic_cache_tier_hits_total{tier="redis"} over workers.
func redisHits(t *testing.T, workers []*workerProc) float64 {
	t.Helper()
	sum := 0.0
	for _, w := range workers {
		v, _, err := w.metric("semantic_cache_tier_hits_total", `tier="redis"`)
		if err != nil {
			t.Fatalf("%s /metrics: %v", w.ID, err)
		}
		sum += v
	}
	return sum
}
