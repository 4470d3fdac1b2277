// Package capacity builds the monthly capacity report from a Prometheus
// server that scrapes the workers: throughput per job class and status,
// latency, fallback and cache hit rates, the backlog's trend, the number of
// workers and how many a target rate needs. It reads Prometheus's HTTP API
// (range queries at a step chosen from the window, and *_over_time-style
// window functions at the report's end) and does the arithmetic here, so the
// figures can be checked without a Prometheus.
//
// A series Prometheus does not have (no bulk traffic, no cache in use) is
// reported as missing (nil), not as an error; a Prometheus that cannot be
// reached is ErrUnreachable.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// ErrUnreachable is returned when the Prometheus server does not answer.
var ErrUnreachable = errors.New("prometheus unreachable")

// ErrNotPrometheus is returned when the server answers, but not as the
// Prometheus HTTP API does (a wrong URL or path).
var ErrNotPrometheus = errors.New("not a Prometheus API")

// Classes are the job classes of the report, in the order it lists them.
var Classes = []string{"interactive", "bulk"}

// Defaults of Options and Thresholds.
const (
	DefaultWindow          = 30 * 24 * time.Hour
	DefaultHeadroom        = 1.3
	DefaultJob             = "hybridscore"
	DefaultMinRateInterval = time.Minute
)

// Options choose what the report covers. The zero value is a 30-day report
// ending now, without a target rate.
type Options struct {
	// Window is how far back the report looks; 0 means DefaultWindow.
	Window time.Duration
	// End is the end of the window; zero means now.
	End time.Time
	// Step is the resolution of the range queries; 0 means Step(Window).
	Step time.Duration
	// RateInterval is the range of each rate(); 0 means the step, and at
	// least DefaultMinRateInterval (four scrapes at the deployment's 15 s).
	// A peak is the highest of these averages.
	RateInterval time.Duration
	// Job is the scrape job of the workers (the "job" label of up); empty
	// means DefaultJob.
	Job string
	// TargetRate is the finished jobs per second to size the pool for; 0
	// means no sizing.
	TargetRate float64
	// Headroom multiplies TargetRate when sizing; 0 means DefaultHeadroom.
	Headroom float64
	// SizeUnsaturated sizes the pool even from a window in which the
	// workers were not saturated (no consumer backlog at its end). What
	// they finished is then what they were asked, a floor of what they can
	// do, and the count an upper bound (Plan.Unsaturated says so); without
	// it such a window gives no count.
	SizeUnsaturated bool
	// Thresholds decide the recommendations; zero fields take their
	// defaults.
	Thresholds Thresholds
}

// Thresholds above (or below) which the report recommends a look. The
// defaults are the bounds of the alert rules in
// deployments/prometheus/alerts.
type Thresholds struct {
	// InteractiveP95 is the highest acceptable p95 of interactive jobs over
	// the window; 0 means 1 s.
	InteractiveP95 time.Duration
	// FallbackRate is the highest acceptable share of scorings that fell
	// back to vector-only; 0 means 0.15.
	FallbackRate float64
	// CacheHitRate is the lowest acceptable cache hit rate; 0 means 0.6.
	CacheHitRate float64
	// InteractiveBacklog is the highest acceptable interactive backlog; 0
	// means 1000.
	InteractiveBacklog float64
}

func (t Thresholds) withDefaults() Thresholds {
	if t.InteractiveP95 == 0 {
		t.InteractiveP95 = time.Second
	}
	if t.FallbackRate == 0 {
		t.FallbackRate = 0.15
	}
	if t.CacheHitRate == 0 {
		t.CacheHitRate = 0.6
	}
	if t.InteractiveBacklog == 0 {
		t.InteractiveBacklog = 1000
	}
	return t
}

// niceSteps are the steps Step chooses from.
var niceSteps = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// stepPoints is about how many points a range query returns per series:
// 720 is hourly for 30 days, far below Prometheus's 11,000-point limit.
const stepPoints = 720

// Step returns the range-query step for a window: the smallest of 1s, 5s,
// 10s, 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 24h that
// gives at most 720 points (1h for 30 days), and 24h beyond.
func Step(window time.Duration) time.Duration {
	for _, s := range niceSteps {
		if window <= s*stepPoints {
			return s
		}
	}
	return niceSteps[len(niceSteps)-1]
}

// WorkersFor returns how many workers serve target jobs/s with headroom,
// each finishing perWorker jobs/s: ceil(target × headroom ÷ perWorker). It
// returns 0 when target or perWorker is not positive (nothing to size, or
// nothing measured).
func WorkersFor(target, headroom, perWorker float64) int {
	if target <= 0 || perWorker <= 0 || headroom <= 0 {
		return 0
	}
	x := target * headroom / perWorker
	// A product like 100 × 1.3 ÷ 32.5 is 4.000000000000001 in floating point.
	return int(math.Ceil(x - 1e-9*x))
}

// Rate is a per-second rate summarised over the window's steps.
type Rate struct {
	Avg    float64   `json:"avg"`
	Peak   float64   `json:"peak"`
	PeakAt time.Time `json:"peak_at"`
}

// Backlog is the trend of a gauge of waiting jobs over the window.
type Backlog struct {
	First        float64 `json:"first"`
	Last         float64 `json:"last"`
	Max          float64 `json:"max"`
	SlopePerHour float64 `json:"slope_per_hour"` // least squares over every step
}

// Class holds one job class's figures ("all" for both together). A nil
// field had no data in the window.
type Class struct {
	Name string `json:"name"`
	// Jobs counts finished jobs: every status but retried and naked, which
	// come back and are counted when they finish.
	Jobs *Rate `json:"jobs_per_second"`
	// P95 is the 95th percentile of receipt-to-ack time over the whole
	// window; P95Worst the highest of the per-step percentiles.
	P95      *float64 `json:"p95_seconds"`
	P95Worst *float64 `json:"p95_worst_step_seconds"`
	// Backlog is scoring_consumer_pending (nil for "all").
	Backlog *Backlog `json:"backlog"`
	// OldestAgeMax is the highest scoring_oldest_job_age_seconds.
	OldestAgeMax *float64 `json:"oldest_job_age_max_seconds"`
}

// Workers is the pool: how many now, and what each finished at the peak.
type Workers struct {
	Now int `json:"now"`
	// Source is the PromQL that counted them.
	Source string `json:"source"`
	// PerWorker is the finished jobs/s of every class at the window's peak
	// divided by the workers up at that step: observed throughput, not a
	// ceiling, unless the workers were saturated then. Nil when no job
	// finished.
	PerWorker *float64 `json:"per_worker_jobs_per_second"`
	// AtPeak is the number of workers that PerWorker divides by.
	AtPeak int `json:"at_peak"`
	// PeakAt is the step of the peak.
	PeakAt time.Time `json:"peak_at"`
}

// Plan sizes the pool for a target rate.
type Plan struct {
	TargetRate float64 `json:"target_rate"`
	Headroom   float64 `json:"headroom"`
	// Workers is WorkersFor(TargetRate, Headroom, PerWorker); 0 when no
	// throughput was measured, or when the workers were not saturated and
	// Options.SizeUnsaturated was not given.
	Workers int `json:"workers"`
	// Unsaturated is true when no consumer backlog lasted to the end of
	// the window: the per-worker figure is a floor, and Workers, if given,
	// an upper bound.
	Unsaturated bool `json:"unsaturated"`
}

// Report is the capacity report. Pointers and missing map entries are
// series Prometheus had no data for.
type Report struct {
	Prometheus          string    `json:"prometheus"`
	Start               time.Time `json:"start"`
	End                 time.Time `json:"end"`
	WindowSeconds       float64   `json:"window_seconds"`
	StepSeconds         float64   `json:"step_seconds"`
	RateIntervalSeconds float64   `json:"rate_interval_seconds"`

	// All is both classes together: jobs from scoring_class_jobs_total,
	// latency from scoring_job_duration_seconds.
	All     Class   `json:"all"`
	Classes []Class `json:"classes"`
	// Statuses is scoring_jobs_total by status, every status included.
	Statuses map[string]Rate `json:"statuses"`

	// FallbackRate is hybrid_scoring_fallback_total over the scorings
	// attempted (hybrid_scoring_duration_seconds_count) in the window;
	// FallbackByReason splits it by reason.
	FallbackRate     *float64           `json:"fallback_rate"`
	FallbackByReason map[string]float64 `json:"fallback_by_reason"`
	// CacheHitRate is semantic_cache_hits_total over hits and misses in the
	// window (two lookups per job: the task and the pattern).
	CacheHitRate *float64 `json:"cache_hit_rate"`

	Workers *Workers `json:"workers"`
	Plan    *Plan    `json:"plan"`

	Recommendations []string `json:"recommendations"`
	// Warnings are what Prometheus warned of while answering.
	Warnings []string `json:"warnings,omitempty"`
}

// Class returns the figures of the named class, or nil.
func (r *Report) Class(name string) *Class {
	for i := range r.Classes {
		if r.Classes[i].Name == name {
			return &r.Classes[i]
		}
	}
	return nil
}

// Collect queries the Prometheus server at address (http://host:9090, or a
// URL with a path prefix) and builds the report. It returns ErrUnreachable
// when the server does not answer, ErrNotPrometheus when it answers
// something else, and an error naming the query when one fails.
func Collect(ctx context.Context, address string, o Options) (*Report, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http://host:port", address)
	}
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", address, err)
	}
	q := &querier{api: v1.NewAPI(c)}

	o = o.withDefaults()
	end := o.End
	if end.IsZero() {
		end = time.Now()
	}
	end = end.Truncate(time.Second)
	r := &Report{
		Prometheus: address, Start: end.Add(-o.Window), End: end,
		WindowSeconds: o.Window.Seconds(), StepSeconds: o.Step.Seconds(), RateIntervalSeconds: o.RateInterval.Seconds(),
		Statuses: map[string]Rate{}, FallbackByReason: map[string]float64{},
	}

	if _, _, _, err := q.api.Query(ctx, "vector(1)", end); err != nil {
		if _, ok := errors.AsType[*v1.Error](err); ok {
			return nil, fmt.Errorf("%w at %s: %w", ErrNotPrometheus, address, err)
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, address, err)
	}

	rng := v1.Range{Start: r.Start, End: end, Step: o.Step}
	ri := promDuration(o.RateInterval)
	win := promDuration(o.Window)
	if err := collect(ctx, q, r, rng, ri, win, o.Job); err != nil {
		return nil, err
	}
	r.Warnings = q.warnings

	r.Plan = plan(r, o)
	r.Recommendations = recommend(r, o.Thresholds.withDefaults())
	return r, nil
}

// plan sizes the pool for o.TargetRate (nil without one): from the
// per-worker figure, only when the workers were saturated or
// o.SizeUnsaturated asks.
func plan(r *Report, o Options) *Plan {
	if o.TargetRate <= 0 {
		return nil
	}
	p := &Plan{TargetRate: o.TargetRate, Headroom: o.Headroom}
	if r.Workers != nil && r.Workers.PerWorker != nil {
		p.Unsaturated = !saturated(r)
		if !p.Unsaturated || o.SizeUnsaturated {
			p.Workers = WorkersFor(o.TargetRate, o.Headroom, *r.Workers.PerWorker)
		}
	}
	return p
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Step <= 0 {
		o.Step = Step(o.Window)
	}
	if o.RateInterval <= 0 {
		o.RateInterval = max(o.Step, DefaultMinRateInterval)
	}
	if o.Job == "" {
		o.Job = DefaultJob
	}
	if o.Headroom <= 0 {
		o.Headroom = DefaultHeadroom
	}
	return o
}

// promDuration writes d as a PromQL duration in whole seconds (at least 1s).
func promDuration(d time.Duration) string {
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10) + "s"
}

// collect runs the queries and fills r.
func collect(ctx context.Context, q *querier, r *Report, rng v1.Range, ri, win, job string) error {
	// Throughput by class; the total is their sum at each step.
	byClass, err := q.rangeBy(ctx, rng, "class",
		`sum by (class) (rate(scoring_class_jobs_total{status!~"retried|naked"}[`+ri+`]))`)
	if err != nil {
		return err
	}
	total := sumSeries(byClass)

	statuses, err := q.rangeBy(ctx, rng, "status", `sum by (status) (rate(scoring_jobs_total[`+ri+`]))`)
	if err != nil {
		return err
	}
	for s, pts := range statuses {
		if rt := summarise(pts); rt != nil {
			r.Statuses[s] = *rt
		}
	}

	p95Worst, err := q.rangeBy(ctx, rng, "",
		`histogram_quantile(0.95, sum by (le) (rate(scoring_job_duration_seconds_bucket[`+ri+`])))`)
	if err != nil {
		return err
	}
	p95WorstClass, err := q.rangeBy(ctx, rng, "class",
		`histogram_quantile(0.95, sum by (class, le) (rate(scoring_class_job_duration_seconds_bucket[`+ri+`])))`)
	if err != nil {
		return err
	}
	p95, err := q.instantBy(ctx, rng.End, "",
		`histogram_quantile(0.95, sum by (le) (increase(scoring_job_duration_seconds_bucket[`+win+`])))`)
	if err != nil {
		return err
	}
	p95Class, err := q.instantBy(ctx, rng.End, "class",
		`histogram_quantile(0.95, sum by (class, le) (increase(scoring_class_job_duration_seconds_bucket[`+win+`])))`)
	if err != nil {
		return err
	}

	// Every worker reports the same consumers' backlog: max, not sum.
	pending, err := q.rangeBy(ctx, rng, "class", `max by (class) (scoring_consumer_pending)`)
	if err != nil {
		return err
	}
	oldest, err := q.rangeBy(ctx, rng, "class", `max by (class) (scoring_oldest_job_age_seconds)`)
	if err != nil {
		return err
	}

	r.All = Class{Name: "all", Jobs: summarise(total), P95: value(p95, ""), P95Worst: peakValue(p95Worst[""])}
	for _, name := range Classes {
		r.Classes = append(r.Classes, Class{Name: name, Jobs: summarise(byClass[name]),
			P95: value(p95Class, name), P95Worst: peakValue(p95WorstClass[name]),
			Backlog: trend(pending[name]), OldestAgeMax: peakValue(oldest[name])})
	}

	fallbacks, err := q.instantBy(ctx, rng.End, "reason", `sum by (reason) (increase(hybrid_scoring_fallback_total[`+win+`]))`)
	if err != nil {
		return err
	}
	scorings, err := q.instantBy(ctx, rng.End, "", `sum(increase(hybrid_scoring_duration_seconds_count[`+win+`]))`)
	if err != nil {
		return err
	}
	if n := value(scorings, ""); n != nil && *n > 0 {
		sum := 0.0
		for reason, v := range fallbacks {
			sum += v
			if v > 0 {
				r.FallbackByReason[reason] = v / *n
			}
		}
		rate := sum / *n
		r.FallbackRate = &rate
	}

	hits, err := q.instantBy(ctx, rng.End, "", `sum(increase(semantic_cache_hits_total[`+win+`]))`)
	if err != nil {
		return err
	}
	misses, err := q.instantBy(ctx, rng.End, "", `sum(increase(semantic_cache_misses_total[`+win+`]))`)
	if err != nil {
		return err
	}
	if h, m := value(hits, ""), value(misses, ""); h != nil && m != nil && *h+*m > 0 {
		rate := *h / (*h + *m)
		r.CacheHitRate = &rate
	}

	return workers(ctx, q, r, rng, job, total)
}

// workers counts the workers now and at the peak, and the throughput per
// worker there.
func workers(ctx context.Context, q *querier, r *Report, rng v1.Range, job string, total []point) error {
	// up is 1 per healthy target; a job without targets has no series, and
	// then the workers' own gauge counts the instances that report.
	exprs := []string{`sum(up{job=` + strconv.Quote(job) + `})`, `count(count by (instance) (scoring_jobs_in_flight))`}
	for _, expr := range exprs {
		now, err := q.instantBy(ctx, rng.End, "", expr)
		if err != nil {
			return err
		}
		over, err := q.rangeBy(ctx, rng, "", expr)
		if err != nil {
			return err
		}
		n := value(now, "")
		if n == nil && len(over[""]) == 0 {
			continue
		}
		w := &Workers{Source: expr}
		if n != nil {
			w.Now = int(math.Round(*n))
		}
		if peak := summarise(total); peak != nil && peak.Peak > 0 {
			at := w.Now
			for _, p := range over[""] {
				if p.t.Equal(peak.PeakAt) && p.v > 0 {
					at = int(math.Round(p.v))
				}
			}
			if at > 0 {
				per := peak.Peak / float64(at)
				w.PerWorker, w.AtPeak, w.PeakAt = &per, at, peak.PeakAt
			}
		}
		r.Workers = w
		return nil
	}
	return nil
}

// point is one sample of a series.
type point struct {
	t time.Time
	v float64
}

// summarise returns the mean and the peak of a rate's samples, or nil when
// there are none. NaN samples (nothing to divide) are skipped.
func summarise(pts []point) *Rate {
	var r Rate
	n := 0
	for _, p := range pts {
		if math.IsNaN(p.v) || math.IsInf(p.v, 0) {
			continue
		}
		if n == 0 || p.v > r.Peak {
			r.Peak, r.PeakAt = p.v, p.t
		}
		r.Avg += p.v
		n++
	}
	if n == 0 {
		return nil
	}
	r.Avg /= float64(n)
	return &r
}

// peakValue returns the highest finite sample, or nil.
func peakValue(pts []point) *float64 {
	if r := summarise(pts); r != nil {
		return &r.Peak
	}
	return nil
}

// trend returns first, last, max and the least-squares slope per hour of a
// gauge's samples, or nil when there are none.
func trend(pts []point) *Backlog {
	var fin []point
	for _, p := range pts {
		if !math.IsNaN(p.v) && !math.IsInf(p.v, 0) {
			fin = append(fin, p)
		}
	}
	if len(fin) == 0 {
		return nil
	}
	b := &Backlog{First: fin[0].v, Last: fin[len(fin)-1].v, Max: fin[0].v}
	t0 := fin[0].t
	var mt, mv float64
	for _, p := range fin {
		b.Max = max(b.Max, p.v)
		mt += p.t.Sub(t0).Hours()
		mv += p.v
	}
	n := float64(len(fin))
	mt, mv = mt/n, mv/n
	var num, den float64
	for _, p := range fin {
		dt := p.t.Sub(t0).Hours() - mt
		num += dt * (p.v - mv)
		den += dt * dt
	}
	if den > 0 {
		b.SlopePerHour = num / den
	}
	return b
}

// sumSeries adds series sample by sample, by timestamp.
func sumSeries(by map[string][]point) []point {
	sum := map[time.Time]float64{}
	for _, pts := range by {
		for _, p := range pts {
			if !math.IsNaN(p.v) {
				sum[p.t] += p.v
			}
		}
	}
	out := make([]point, 0, len(sum))
	for t, v := range sum {
		out = append(out, point{t, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].t.Before(out[j].t) })
	return out
}

// value returns the finite sample of key, or nil.
func value(m map[string]float64, key string) *float64 {
	v, ok := m[key]
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// querier runs queries and keeps Prometheus's warnings.
type querier struct {
	api      v1.API
	warnings []string
}

// rangeBy runs a range query and returns its series keyed by the value of
// label ("" for a single series without it).
func (q *querier) rangeBy(ctx context.Context, rng v1.Range, label, expr string) (map[string][]point, error) {
	v, warns, _, err := q.api.QueryRange(ctx, expr, rng)
	if err != nil {
		return nil, fmt.Errorf("query_range %s: %w", expr, err)
	}
	q.warn(expr, warns)
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query_range %s: got %s, want a matrix", expr, v.Type())
	}
	out := map[string][]point{}
	for _, s := range m {
		k := string(s.Metric[model.LabelName(label)])
		for _, p := range s.Values {
			out[k] = append(out[k], point{p.Timestamp.Time(), float64(p.Value)})
		}
	}
	return out, nil
}

// instantBy runs an instant query at ts and returns its samples keyed by
// the value of label.
func (q *querier) instantBy(ctx context.Context, ts time.Time, label, expr string) (map[string]float64, error) {
	v, warns, _, err := q.api.Query(ctx, expr, ts)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	q.warn(expr, warns)
	out := map[string]float64{}
	switch v := v.(type) {
	case model.Vector:
		for _, s := range v {
			out[string(s.Metric[model.LabelName(label)])] = float64(s.Value)
		}
	case *model.Scalar:
		out[""] = float64(v.Value)
	default:
		return nil, fmt.Errorf("query %s: got %s, want a vector", expr, v.Type())
	}
	return out, nil
}

func (q *querier) warn(expr string, warns v1.Warnings) {
	for _, w := range warns {
		q.warnings = append(q.warnings, expr+": "+w)
	}
}
