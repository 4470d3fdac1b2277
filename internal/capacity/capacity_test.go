package capacity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/capacity"
)

// fakeProm answers /api/v1/query and /api/v1/query_range as Prometheus does,
// from series registered by a fragment of the query they answer. A query no
// fragment matches gets an empty result, as a metric Prometheus never saw.
type fakeProm struct {
	mu sync.Mutex
	// series by query fragment: labels, then values at the range steps in
	// order; an instant query gets the last value.
	series  map[string][]fakeSeries
	queries []string
}

type fakeSeries struct {
	labels map[string]string
	values []float64
}

func newFakeProm(t *testing.T) (*fakeProm, *httptest.Server) {
	f := &fakeProm{series: map[string][]fakeSeries{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeProm) add(fragment string, labels map[string]string, values ...float64) {
	if labels == nil {
		labels = map[string]string{}
	}
	f.series[fragment] = append(f.series[fragment], fakeSeries{labels, values})
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if strings.Contains(q, "syntax error") {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`)
		return
	}
	var matched []fakeSeries
	for frag, ss := range f.series {
		if strings.Contains(q, frag) {
			matched = append(matched, ss...)
		}
	}
	var result []map[string]any
	switch r.URL.Path {
	case "/api/v1/query_range":
		start, _ := strconv.ParseFloat(r.Form.Get("start"), 64)
		step, _ := strconv.ParseFloat(r.Form.Get("step"), 64)
		for _, s := range matched {
			var vals [][2]any
			for i, v := range s.values {
				vals = append(vals, [2]any{start + float64(i)*step, strconv.FormatFloat(v, 'g', -1, 64)})
			}
			result = append(result, map[string]any{"metric": s.labels, "values": vals})
		}
		writeData(w, "matrix", result)
	case "/api/v1/query":
		ts, _ := strconv.ParseFloat(r.Form.Get("time"), 64)
		if q == "vector(1)" {
			writeData(w, "vector", []map[string]any{{"metric": map[string]string{}, "value": [2]any{ts, "1"}}})
			return
		}
		for _, s := range matched {
			v := s.values[len(s.values)-1]
			result = append(result, map[string]any{"metric": s.labels, "value": [2]any{ts, strconv.FormatFloat(v, 'g', -1, 64)}})
		}
		writeData(w, "vector", result)
	default:
		http.NotFound(w, r)
	}
}

func writeData(w http.ResponseWriter, typ string, result []map[string]any) {
	if result == nil {
		result = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": typ, "result": result}})
}

func class(c string) map[string]string { return map[string]string{"class": c} }

var end = time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)

func TestCollectArithmetic(t *testing.T) {
	f, srv := newFakeProm(t)
	// Five hourly steps of a 4-hour window.
	f.add("scoring_class_jobs_total", class("interactive"), 10, 20, 40, 30, 20)
	f.add("scoring_class_jobs_total", class("bulk"), 5, 5, 20, 0, 0)
	f.add("sum by (status) (rate(scoring_jobs_total", map[string]string{"status": "scored"}, 15, 25, 60, 30, 20)
	f.add("sum by (status) (rate(scoring_jobs_total", map[string]string{"status": "retried"}, 1, 1, 1, 1, 1)
	f.add("rate(scoring_job_duration_seconds_bucket", nil, 0.01, 0.02, math.NaN(), 0.05, 0.01)
	f.add("increase(scoring_job_duration_seconds_bucket", nil, 0.025)
	f.add("rate(scoring_class_job_duration_seconds_bucket", class("interactive"), 0.01, 2, 0.01, 0.01, 0.01)
	f.add("increase(scoring_class_job_duration_seconds_bucket", class("interactive"), 1.5)
	f.add("scoring_consumer_pending", class("interactive"), 0, 2000, 10, 0, 0)
	f.add("scoring_consumer_pending", class("bulk"), 100, 200, 300, 400, 500)
	f.add("scoring_oldest_job_age_seconds", class("bulk"), 1, 60, 2, 3, 4)
	f.add("hybrid_scoring_fallback_total", map[string]string{"reason": "timeout"}, 30)
	f.add("hybrid_scoring_fallback_total", map[string]string{"reason": "unavailable"}, 10)
	f.add("hybrid_scoring_fallback_total", map[string]string{"reason": "rate_limited"}, 0)
	f.add("hybrid_scoring_duration_seconds_count", nil, 200)
	f.add("semantic_cache_hits_total", nil, 50)
	f.add("semantic_cache_misses_total", nil, 150)
	f.add(`up{job="hybridscore"}`, nil, 1, 1, 2, 3, 3) // two workers at the peak, three now

	r, err := capacity.Collect(context.Background(), srv.URL, capacity.Options{Window: 4 * time.Hour, Step: time.Hour,
		End: end, TargetRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	asked := strings.Join(f.queries, "\n")
	f.mu.Unlock()
	for _, want := range []string{`rate(scoring_class_jobs_total{status!~"retried|naked"}[3600s])`,
		`increase(scoring_class_job_duration_seconds_bucket[14400s])`, `sum(up{job="hybridscore"})`} {
		if !strings.Contains(asked, want) {
			t.Errorf("no query has %s; asked:\n%s", want, asked)
		}
	}
	peakAt := end.Add(-2 * time.Hour)
	if r.RateIntervalSeconds != 3600 || r.StepSeconds != 3600 || !r.Start.Equal(end.Add(-4*time.Hour)) {
		t.Errorf("step %v, rate interval %v, start %v", r.StepSeconds, r.RateIntervalSeconds, r.Start)
	}

	inter := r.Class("interactive")
	wantRate(t, "interactive", inter.Jobs, 24, 40, peakAt)
	wantRate(t, "bulk", r.Class("bulk").Jobs, 6, 20, peakAt)
	wantRate(t, "all", r.All.Jobs, 30, 60, peakAt)
	if s := r.Statuses["scored"]; s.Avg != 30 || s.Peak != 60 {
		t.Errorf("status scored %+v", s)
	}
	if s := r.Statuses["retried"]; s.Avg != 1 {
		t.Errorf("status retried %+v", s)
	}

	wantFloat(t, "all p95", r.All.P95, 0.025)
	wantFloat(t, "all worst p95 (NaN step skipped)", r.All.P95Worst, 0.05)
	wantFloat(t, "interactive p95", inter.P95, 1.5)
	wantFloat(t, "interactive worst p95", inter.P95Worst, 2)
	if b := r.Class("bulk"); b.P95 != nil || b.P95Worst != nil {
		t.Errorf("bulk p95 %v %v, want no data", b.P95, b.P95Worst)
	}

	if b := r.Class("bulk").Backlog; b == nil || b.First != 100 || b.Last != 500 || b.Max != 500 || math.Abs(b.SlopePerHour-100) > 1e-9 {
		t.Errorf("bulk backlog %+v, want 100 → 500, max 500, +100/h", b)
	}
	if b := inter.Backlog; b == nil || b.Max != 2000 || b.First != 0 || b.Last != 0 {
		t.Errorf("interactive backlog %+v", b)
	}
	wantFloat(t, "bulk oldest age max", r.Class("bulk").OldestAgeMax, 60)
	if inter.OldestAgeMax != nil {
		t.Errorf("interactive oldest age %v, want no data", *inter.OldestAgeMax)
	}

	wantFloat(t, "fallback rate", r.FallbackRate, 0.2)
	if got := r.FallbackByReason; len(got) != 2 || got["timeout"] != 0.15 || got["unavailable"] != 0.05 {
		t.Errorf("fallback by reason %v", got)
	}
	wantFloat(t, "cache hit rate", r.CacheHitRate, 0.25)

	w := r.Workers
	if w == nil || w.Now != 3 || w.AtPeak != 2 || !w.PeakAt.Equal(peakAt) {
		t.Fatalf("workers %+v, want 3 now and 2 at the peak", w)
	}
	wantFloat(t, "per worker", w.PerWorker, 30)
	if r.Plan == nil || r.Plan.Workers != 5 || r.Plan.Headroom != 1.3 { // ceil(100 × 1.3 ÷ 30)
		t.Errorf("plan %+v, want 5 workers", r.Plan)
	}

	for _, want := range []string{"scale out: 3 → 5 workers", "investigate latency: interactive p95 over the window is 1.5s",
		"interactive backlog reached 2000", "bulk backlog grew from 100 to 500", "investigate fallbacks: 20.0% of scorings",
		"most of them timeout (15.0%)", "investigate the cache: hit rate 25.0%"} {
		if !containsLine(r.Recommendations, want) {
			t.Errorf("recommendations lack %q:\n  %s", want, strings.Join(r.Recommendations, "\n  "))
		}
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for first, want := range map[string]string{
		"interactive 24":    "interactive 24 40 2026-03-30 22:00:00Z 1.5s 2s",
		"bulk 6":            "bulk 6 20 2026-03-30 22:00:00Z no data no data",
		"all":               "all 30 60 2026-03-30 22:00:00Z 25ms 50ms",
		"bulk 100":          "bulk 100 500 500 +100 1m0s",
		"fallback rate":     "fallback rate 20.0% (timeout 15.0%, unavailable 5.0%)",
		"workers for":       "workers for 100 jobs/s ×1.3 5",
		"window, step":      "window, step, rate interval 4h, 1h, 1h",
		"per-worker jobs/s": "per-worker jobs/s at peak 30 (2 worker(s) at 2026-03-30 22:00:00Z)",
	} {
		if got := row(text.String(), first); got != want {
			t.Errorf("text row %q, want %q:\n%s", got, want, text.String())
		}
	}
}

func wantRate(t *testing.T, what string, r *capacity.Rate, avg, peak float64, at time.Time) {
	t.Helper()
	if r == nil || math.Abs(r.Avg-avg) > 1e-9 || r.Peak != peak || !r.PeakAt.Equal(at) {
		t.Errorf("%s jobs/s %+v, want avg %v, peak %v at %v", what, r, avg, peak, at)
	}
}

func wantFloat(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > 1e-9 {
		t.Errorf("%s = %v, want %v", what, fmtPtr(got), want)
	}
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "no data"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

// row returns the first line of text that starts with first, its cells
// joined by single spaces.
func row(text, first string) string {
	for _, l := range strings.Split(text, "\n") {
		if l = strings.Join(strings.Fields(l), " "); strings.HasPrefix(l, first) {
			return l
		}
	}
	return ""
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestCollectNoData(t *testing.T) {
	f, srv := newFakeProm(t)
	// Only interactive traffic, one worker found through its own gauge (the
	// scrape job has another name).
	f.add("scoring_class_jobs_total", class("interactive"), 4, 4)
	f.add("scoring_jobs_in_flight", nil, 1, 1)

	// No backlog series: the workers are not known to have been
	// saturated, so the pool is sized only on request.
	r, err := capacity.Collect(context.Background(), srv.URL, capacity.Options{Window: time.Minute, End: end, TargetRate: 3, Headroom: 1, SizeUnsaturated: true})
	if err != nil {
		t.Fatalf("missing series must not be an error: %v", err)
	}
	if r.StepSeconds != 1 || r.RateIntervalSeconds != 60 {
		t.Errorf("step %v rate interval %v, want 1 and 60", r.StepSeconds, r.RateIntervalSeconds)
	}
	if b := r.Class("bulk"); b.Jobs != nil || b.Backlog != nil || b.P95 != nil {
		t.Errorf("bulk %+v, want no data", b)
	}
	if r.FallbackRate != nil || r.CacheHitRate != nil || r.All.P95 != nil || len(r.Statuses) != 0 {
		t.Errorf("figures without series: fallback %v cache %v p95 %v statuses %v", r.FallbackRate, r.CacheHitRate, r.All.P95, r.Statuses)
	}
	if r.Workers == nil || r.Workers.Now != 1 || !strings.Contains(r.Workers.Source, "scoring_jobs_in_flight") {
		t.Errorf("workers %+v, want 1 from scoring_jobs_in_flight", r.Workers)
	}
	if r.Plan == nil || r.Plan.Workers != 1 || !containsLine(r.Recommendations, "keep 1 worker(s)") {
		t.Errorf("plan %+v, recommendations %q", r.Plan, r.Recommendations)
	}

	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for first, want := range map[string]string{
		"bulk":          "bulk no data no data no data",
		"fallback rate": "fallback rate no data",
		"workers now":   "workers now 1 (count(count by (instance) (scoring_jobs_in_flight)))",
	} {
		if got := row(text.String(), first); got != want {
			t.Errorf("text row %q, want %q:\n%s", got, want, text.String())
		}
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Classes []struct {
			Name string          `json:"name"`
			Jobs json.RawMessage `json:"jobs_per_second"`
		} `json:"classes"`
		FallbackRate json.RawMessage `json:"fallback_rate"`
	}
	if err := json.Unmarshal(js.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw.FallbackRate) != "null" || len(raw.Classes) != 2 || raw.Classes[1].Name != "bulk" || string(raw.Classes[1].Jobs) != "null" {
		t.Errorf("JSON: missing figures must be null:\n%s", js.String())
	}

	// Nothing at all: no workers, no sizing, still a report.
	_, empty := newFakeProm(t)
	r, err = capacity.Collect(context.Background(), empty.URL, capacity.Options{End: end, TargetRate: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Workers != nil || r.Plan.Workers != 0 || !containsLine(r.Recommendations, "no worker target") || r.StepSeconds != 3600 {
		t.Errorf("empty Prometheus: workers %+v, plan %+v, step %v, recommendations %q", r.Workers, r.Plan, r.StepSeconds, r.Recommendations)
	}
}

func TestCollectErrors(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	_, err = capacity.Collect(context.Background(), closed, capacity.Options{})
	if !errors.Is(err, capacity.ErrUnreachable) || !strings.Contains(err.Error(), closed) {
		t.Errorf("closed port: %v, want ErrUnreachable naming %s", err, closed)
	}

	notProm := httptest.NewServer(http.NotFoundHandler())
	defer notProm.Close()
	_, err = capacity.Collect(context.Background(), notProm.URL, capacity.Options{})
	if !errors.Is(err, capacity.ErrNotPrometheus) {
		t.Errorf("a server answering 404: %v, want ErrNotPrometheus", err)
	}

	if _, err := capacity.Collect(context.Background(), "localhost:9090", capacity.Options{}); err == nil {
		t.Error("a URL without scheme was accepted")
	}

	// A query Prometheus refuses is an error naming the query.
	_, srv := newFakeProm(t)
	_, err = capacity.Collect(context.Background(), srv.URL, capacity.Options{Job: "syntax error"})
	if err == nil || errors.Is(err, capacity.ErrUnreachable) || !strings.Contains(err.Error(), `up{job="syntax error"}`) {
		t.Errorf("refused query: %v", err)
	}
}

func TestStep(t *testing.T) {
	for window, want := range map[time.Duration]time.Duration{
		time.Minute:         time.Second,
		12 * time.Minute:    time.Second,
		13 * time.Minute:    5 * time.Second,
		time.Hour:           5 * time.Second,
		24 * time.Hour:      2 * time.Minute,
		7 * 24 * time.Hour:  15 * time.Minute,
		30 * 24 * time.Hour: time.Hour,
		31 * 24 * time.Hour: 2 * time.Hour,
		3000 * time.Hour:    6 * time.Hour,
		20000 * time.Hour:   24 * time.Hour,
	} {
		if got := capacity.Step(window); got != want {
			t.Errorf("Step(%v) = %v, want %v", window, got, want)
		}
	}
}

func TestWorkersFor(t *testing.T) {
	for _, c := range []struct {
		target, headroom, per float64
		want                  int
	}{
		{120, 1.3, 40, 4},    // 3.9
		{100, 1.3, 32.5, 4},  // exactly 4, whatever the rounding of 1.3
		{100, 1.3, 32.4, 5},  // 4.01
		{10, 1.3, 1000, 1},   // a fraction of one worker is one
		{0, 1.3, 40, 0},      // nothing to size
		{100, 1.3, 0, 0},     // nothing measured
		{1e6, 1, 33_000, 31}, // 30.3
	} {
		if got := capacity.WorkersFor(c.target, c.headroom, c.per); got != c.want {
			t.Errorf("WorkersFor(%v, %v, %v) = %d, want %d", c.target, c.headroom, c.per, got, c.want)
		}
	}
}
