//go:build containers

package integration

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// TestCoalescingAcrossWorkers runs two worker containers sharing one Redis
// against a langextract-compatible server in the test process, which counts
// the analyses it is asked for. 600 jobs draw their texts from 50 task and 50
// pattern texts at random, so both workers meet the same texts at the same
// time: across the two processes langextract must be asked about each
// distinct text once (10% margin), every job must get exactly one stored
// result, and the second worker must find texts in Redis.
func TestCoalescingAcrossWorkers(t *testing.T) {
	s := newStack(t, 3*time.Minute)
	le := langextractd.New(langextractd.Faults{Latency: 20 * time.Millisecond})
	leURL := serveOnHost(t, le)

	n := s.startNATS("nats", natsArgs())
	s.startRedis()
	env := map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "6379", "LANGEXTRACT_URL": leURL}
	w1 := s.startWorker("w1", env, withHostGateway())
	w2 := s.startWorker("w2", env, withHostGateway())
	c := connect(t, s.endpoint(n, "4222/tcp", "nats"))

	const lane, total, texts = "coalesce", 600, 50
	rng := rand.New(rand.NewPCG(20261126, 1))
	jobs := make([]job.Wire, total)
	distinct := map[string]bool{}
	for i := range jobs {
		task, pattern := taskText("coalesce", rng.IntN(texts)), patternText("coalesce", rng.IntN(texts))
		distinct[task], distinct[pattern] = true, true
		jobs[i] = job.Wire{JobID: fmt.Sprintf("coalesce-%04d", i), TaskDescription: task, HistoricalPatternText: pattern,
			VectorSimilarity: float64(i%101) / 100}
	}
	start := time.Now()
	c.publish(s.ctx, lane, jobs)
	c.waitDone(s.ctx, lane, total, 2*time.Minute)
	elapsed := time.Since(start)
	rs := exactlyOnce(t, jobs, c.results(s.ctx, lane))
	requireScored(t, rs)

	calls, asked := le.Calls(), le.Distinct()
	perWorker := tally(rs, byWorker)
	tiers := map[string]int{}
	for _, r := range rs {
		if r.Cache != nil {
			tiers[r.Cache.Task]++
			tiers[r.Cache.Pattern]++
		}
	}
	maxPerText := 0
	for text := range distinct {
		maxPerText = max(maxPerText, le.CallsFor(text))
	}
	t.Logf("%d jobs in %s; langextract: %d calls for %d distinct texts (%d expected, at most %d calls for one text); jobs per worker %v; cache tiers over both texts %v",
		total, elapsed.Round(time.Millisecond), calls, asked, len(distinct), maxPerText, perWorker, tiers)

	if asked != len(distinct) {
		t.Errorf("langextract was asked about %d distinct texts; the jobs hold %d", asked, len(distinct))
	}
	if limit := asked + asked/10; calls > int64(limit) {
		t.Errorf("langextract calls %d for %d distinct texts: want at most %d (one per text, 10%% margin) with two workers sharing Redis", calls, asked, limit)
	}
	if perWorker[w1.ID] == 0 || perWorker[w2.ID] == 0 {
		t.Errorf("jobs per worker %v: both workers should have scored jobs", perWorker)
	}
	if tiers["redis"] == 0 {
		t.Errorf("cache tiers %v: no text was ever found in Redis, so the workers did not share their analyses", tiers)
	}
	// The workers' own view agrees: both report Redis hits or shared waits.
	for _, w := range []*workerProc{w1, w2} {
		r, _, _ := w.metric("semantic_cache_tier_hits_total", `tier="redis"`)
		sh, _, _ := w.metric("semantic_cache_tier_hits_total", `tier="shared"`)
		t.Logf("%s: semantic_cache_tier_hits_total redis=%v shared=%v", w.ID, r, sh)
	}
}

// serveOnHost serves h on all interfaces of the test's machine and returns
// its URL as containers started with withHostGateway see it. Set
// HYBRIDSCORE_TEST_HOST when containers reach this process under another
// address (e.g. when the tests themselves run in a container).
func serveOnHost(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	host := envOr("HYBRIDSCORE_TEST_HOST", "host.docker.internal")
	return fmt.Sprintf("http://%s:%d", host, ln.Addr().(*net.TCPAddr).Port)
}
