package prometheus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/capacity"
)

// checkCapacity runs the capacity report (internal/capacity, what
// `publisher capacity` prints) against the live Prometheus, whose data
// began at since, and checks its figures: one worker, interactive and bulk
// jobs finishing at about the load's rate, latencies, fallbacks and cache
// hits the load causes, and the pool a target rate needs.
func checkCapacity(t *testing.T, p *promAPI, since time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const (
		target   = 1000.0 // jobs/s
		headroom = 1.3
		loadRate = 50.0 // generateLoad publishes one job every 20 ms
	)
	window := time.Since(since).Round(time.Second) + 5*time.Second
	// Sized even if the worker kept up (no backlog left): the arithmetic is
	// what is checked here.
	opts := capacity.Options{SizeUnsaturated: true, Window: window, Step: time.Second, RateInterval: 5 * time.Second,
		TargetRate: target, Headroom: headroom}
	r, err := capacity.Collect(ctx, p.base, opts)
	if err != nil {
		t.Fatalf("capacity report: %v", err)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("capacity report:\n%s", text.String())

	inter, bulk := r.Class("interactive"), r.Class("bulk")
	if inter == nil || bulk == nil {
		t.Fatalf("classes %+v, want interactive and bulk", r.Classes)
	}
	for _, c := range []*capacity.Class{inter, bulk, &r.All} {
		switch {
		case c.Jobs == nil:
			t.Errorf("%s: no jobs/s", c.Name)
		case c.Jobs.Avg <= 0 || c.Jobs.Peak < c.Jobs.Avg:
			t.Errorf("%s: jobs/s avg %v peak %v, want 0 < avg <= peak", c.Name, c.Jobs.Avg, c.Jobs.Peak)
		}
		if c.P95 == nil || *c.P95 <= 0 || c.P95Worst == nil || *c.P95Worst <= 0 {
			t.Errorf("%s: p95 %v, worst step %v, want both > 0", c.Name, c.P95, c.P95Worst)
		}
	}
	if r.All.Jobs != nil {
		// The load cannot finish jobs much faster than it publishes them; a
		// double count (classes, or redeliveries counted twice) would.
		if r.All.Jobs.Peak > 2*loadRate {
			t.Errorf("peak %v jobs/s, more than twice the load's %v/s", r.All.Jobs.Peak, loadRate)
		}
		// scoring_jobs_total (by lane) and scoring_class_jobs_total count the
		// same jobs: the finished statuses of one add up to the other.
		finished := 0.0
		for s, rt := range r.Statuses {
			if s != "retried" && s != "naked" {
				finished += rt.Avg
			}
		}
		// A scrape can fall between a job's increments of the two counters,
		// so they may differ by a job or two at the window's ends (seen
		// once: 26.213 against 26.288 jobs/s over 14 s); a double count
		// would differ by all of them.
		if tol := max(1e-6*r.All.Jobs.Avg, 3/window.Seconds()); math.Abs(finished-r.All.Jobs.Avg) > tol {
			t.Errorf("finished statuses of scoring_jobs_total average %v jobs/s, classes %v (tolerance %v)", finished, r.All.Jobs.Avg, tol)
		}
		if _, ok := r.Statuses["scored"]; !ok {
			t.Errorf("statuses %v lack scored", r.Statuses)
		}
	}

	// Backlog gauges exist for both classes (zero or more jobs waiting).
	for _, c := range []*capacity.Class{inter, bulk} {
		if c.Backlog == nil || c.Backlog.Max < 0 || c.OldestAgeMax == nil {
			t.Errorf("%s: backlog %+v, oldest age max %v", c.Name, c.Backlog, c.OldestAgeMax)
		}
	}

	// 20% of langextract calls fail and the load keeps sending new texts:
	// some scorings fall back, and repeated texts hit the cache.
	if r.FallbackRate == nil || *r.FallbackRate <= 0 || *r.FallbackRate > 1 {
		t.Errorf("fallback rate %v, want in (0, 1]", r.FallbackRate)
	} else {
		sum := 0.0
		for _, v := range r.FallbackByReason {
			sum += v
		}
		if math.Abs(sum-*r.FallbackRate) > 1e-9 {
			t.Errorf("fallback reasons %v add up to %v, not %v", r.FallbackByReason, sum, *r.FallbackRate)
		}
	}
	if r.CacheHitRate == nil || *r.CacheHitRate <= 0 || *r.CacheHitRate >= 1 {
		t.Errorf("cache hit rate %v, want in (0, 1)", r.CacheHitRate)
	}

	// One worker: what it finished at the peak is the throughput per worker,
	// and the target rate needs ceil(target × headroom ÷ that).
	switch w := r.Workers; {
	case w == nil:
		t.Errorf("no workers counted")
	case w.Now != 1 || w.AtPeak != 1:
		t.Errorf("workers now %d, at peak %d, want 1 and 1 (%s)", w.Now, w.AtPeak, w.Source)
	case w.PerWorker == nil || *w.PerWorker <= 0:
		t.Errorf("per-worker throughput %v, want > 0", w.PerWorker)
	case r.All.Jobs != nil && *w.PerWorker != r.All.Jobs.Peak:
		t.Errorf("per-worker throughput %v with one worker, want the peak %v", *w.PerWorker, r.All.Jobs.Peak)
	case r.Plan == nil:
		t.Errorf("no plan for --target-rate %v", target)
	default:
		want := int(math.Ceil(target * headroom / *w.PerWorker))
		if r.Plan.Workers != want {
			t.Errorf("workers for %v jobs/s: %d, want ceil(%v × %v ÷ %v) = %d", target, r.Plan.Workers, target, headroom, *w.PerWorker, want)
		}
		if want > 1 && !strings.HasPrefix(r.Recommendations[0], "scale out: 1 → ") {
			t.Errorf("recommendations %q, want scale out first", r.Recommendations)
		}
	}

	// The JSON form carries the same figures.
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back capacity.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, js.String())
	}
	if back.Workers == nil || back.Plan == nil || back.Plan.Workers != r.Plan.Workers || back.Class("interactive").Jobs == nil {
		t.Errorf("report JSON lost figures:\n%s", js.String())
	}

	// A window before the data: every figure is missing, none is an error.
	opts.End = since.Add(-time.Hour)
	empty, err := capacity.Collect(ctx, p.base, opts)
	if err != nil {
		t.Fatalf("capacity report before the data: %v", err)
	}
	if empty.All.Jobs != nil || empty.Class("interactive").Jobs != nil || empty.Workers != nil || empty.FallbackRate != nil ||
		empty.CacheHitRate != nil || empty.Plan == nil || empty.Plan.Workers != 0 {
		t.Errorf("report before the data has figures: %+v", empty)
	}
	text.Reset()
	if err := empty.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(strings.Split(text.String(), "\n"), func(l string) bool {
		return strings.Join(strings.Fields(l), " ") == "interactive no data no data no data"
	}) {
		t.Errorf("report before the data lacks the row \"interactive no data no data no data\":\n%s", text.String())
	}
}
