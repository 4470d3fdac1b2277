// Package metrics exports the service's Prometheus metrics (langextract_*,
// semantic_cache_*, hybrid_*, pattern_similarity_score, redis_up) and the
// worker's scoring_* metrics (docs/contract.md#metrics) from one registry. It
// implements the observer interfaces the engine and the consumer declare, so
// neither imports Prometheus.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hybridscore/hybridscore/internal/breaker"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/scoring"
	"github.com/hybridscore/hybridscore/internal/semcache"
)

// Reasons lists every fallback_reason, pre-created as label values so that
// rates over them exist (as zero) before the first fallback.
var Reasons = []string{
	langextract.ReasonTimeout, langextract.ReasonUnavailable, langextract.ReasonValidation,
	langextract.ReasonCircuitBreaker, langextract.ReasonRateLimited, langextract.ReasonUnknown,
}

// Buckets for the engine's own work: cached scoring takes microseconds.
var fastBuckets = []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Buckets for langextract calls: milliseconds to the 10 s timeout and beyond.
var remoteBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30}

// Metrics holds every collector. Safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	langextractRequests *prometheus.CounterVec
	langextractDuration *prometheus.HistogramVec
	breakerState        prometheus.Gauge
	langextractFallback map[string]prometheus.Counter
	scoringDuration     prometheus.Histogram
	patternScore        prometheus.Histogram
	confidence          prometheus.Histogram
	scoringFallback     map[string]prometheus.Counter

	jobs         *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
	inFlight     prometheus.Gauge
	inFlightN    atomic.Int64 // the gauge's value, readable without a scrape
	redeliveries *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	adminAuth    prometheus.Counter
	jobSeries    sync.Map // jobKey → *jobSeries
	lanes        lanes
	classMu      sync.Mutex
	classes      map[string]health.Class
	pending      *prometheus.GaugeVec
	ackPending   *prometheus.GaugeVec
	oldest       *prometheus.GaugeVec
	classJobs    *prometheus.CounterVec
	classLatency *prometheus.HistogramVec
}

// New registers every metric, plus the Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r, classes: map[string]health.Class{}, lanes: lanes{max: DefaultMaxLanes, known: map[string]struct{}{}}}
	m.langextractRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "langextract_requests_total",
		Help: "Requests to langextract, by endpoint (analyze_semantic, health) and status (success, error, timeout)."}, []string{"endpoint", "status"})
	m.langextractDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "langextract_request_duration_seconds",
		Help: "Duration of langextract requests (each attempt).", Buckets: remoteBuckets}, []string{"endpoint"})
	m.breakerState = prometheus.NewGauge(prometheus.GaugeOpts{Name: "langextract_circuit_breaker_state",
		Help: "Circuit breaker state: 0 closed, 1 open, 2 half-open."})
	lf := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "langextract_fallback_total",
		Help: "Jobs that fell back to vector-only scoring, by reason."}, []string{"reason"})
	m.scoringDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hybrid_scoring_duration_seconds",
		Help: "Time to score one job (analyses, similarity, combination), fallbacks included.", Buckets: fastBuckets})
	m.patternScore = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pattern_similarity_score",
		Help: "Pattern similarity of scored jobs.", Buckets: prometheus.LinearBuckets(0.1, 0.1, 10)})
	m.confidence = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hybrid_score_confidence",
		Help: "Confidence of scored jobs.", Buckets: prometheus.LinearBuckets(0.1, 0.1, 10)})
	sf := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hybrid_scoring_fallback_total",
		Help: "Hybrid scorings that returned the vector-only fallback, by reason."}, []string{"reason"})
	m.langextractFallback, m.scoringFallback = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	for _, reason := range Reasons {
		m.langextractFallback[reason] = lf.WithLabelValues(reason)
		m.scoringFallback[reason] = sf.WithLabelValues(reason)
	}
	for _, ep := range []string{langextract.EndpointAnalyze, langextract.EndpointHealth} {
		for _, st := range []string{langextract.StatusSuccess, langextract.StatusError, langextract.StatusTimeout} {
			m.langextractRequests.WithLabelValues(ep, st)
		}
	}

	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scoring_jobs_total",
		Help: "Jobs handled, by lane and status (scored, degraded, rejected, expired, retried, naked, duplicate, dead_lettered)."}, []string{"lane", "status"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "scoring_job_duration_seconds",
		Help: "Time from receiving a job to acking, naking or terminating it.", Buckets: fastBuckets}, []string{"lane"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "scoring_jobs_in_flight", Help: "Jobs being processed now."})
	m.redeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scoring_redeliveries_total",
		Help: "Deliveries after the first, by lane."}, []string{"lane"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scoring_dead_letters_total",
		Help: "Jobs copied to the dead-letter stream, by lane and reason."}, []string{"lane", "reason"})
	m.duplicates = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scoring_duplicates_total",
		Help: "Jobs answered before and acked without a second result, by lane and how it was found (record: the job's stored result; claim: an earlier version's claim)."}, []string{"lane", "source"})
	m.adminAuth = prometheus.NewCounter(prometheus.CounterOpts{Name: "scoring_admin_auth_failures_total",
		Help: "Admin requests refused for a missing or wrong bearer token."})
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scoring_consumer_pending",
		Help: "Jobs in the stream not yet delivered to the consumer, by class (interactive: hybrid-scorer, bulk: hybrid-scorer-bulk)."}, []string{"class"})
	m.ackPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scoring_consumer_ack_pending",
		Help: "Jobs delivered and not yet acknowledged, by class."}, []string{"class"})
	m.oldest = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scoring_oldest_job_age_seconds",
		Help: "Age of the oldest job not yet acknowledged in the class's stream (0 when empty)."}, []string{"class"})
	m.classJobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scoring_class_jobs_total",
		Help: "Jobs handled, by class and status."}, []string{"class", "status"})
	m.classLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "scoring_class_job_duration_seconds",
		Help: "Time from receiving a job to acking, naking or terminating it, by class.", Buckets: fastBuckets}, []string{"class"})
	for _, c := range []prometheus.Collector{m.langextractRequests, m.langextractDuration, m.breakerState, lf, m.scoringDuration,
		m.patternScore, m.confidence, sf, m.jobs, m.jobDuration, m.inFlight, m.redeliveries, m.deadLetters, m.duplicates, m.adminAuth, m.pending, m.ackPending,
		m.oldest, m.classJobs, m.classLatency} {
		f(c)
	}
	return m
}

// ObserveLangextract records one langextract attempt (langextract.Observer).
func (m *Metrics) ObserveLangextract(endpoint, status string, d time.Duration) {
	m.langextractRequests.WithLabelValues(endpoint, status).Inc()
	m.langextractDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// BreakerChanged records a breaker transition.
func (m *Metrics) BreakerChanged(_, to breaker.State) { m.breakerState.Set(float64(to)) }

// ObserveOutcome records one scoring (scoring.Observer).
func (m *Metrics) ObserveOutcome(o scoring.Outcome) {
	m.scoringDuration.Observe(o.Duration.Seconds())
	if o.Status == scoring.Scored {
		m.patternScore.Observe(o.Pattern)
		m.confidence.Observe(o.Confidence)
		return
	}
	if c := m.langextractFallback[o.FallbackReason]; c != nil {
		c.Inc()
		m.scoringFallback[o.FallbackReason].Inc()
	}
}

// JobDone implements consumer.Observer. It runs once per job: the series
// of a lane and status are looked up once and remembered, since a label
// lookup hashes and allocates every time.
func (m *Metrics) JobDone(class consumer.Class, lane, status string, d time.Duration) {
	lane = m.lanes.label(lane)
	k := jobKey{class, lane, status}
	js, ok := m.jobSeries.Load(k)
	if !ok {
		js, _ = m.jobSeries.LoadOrStore(k, &jobSeries{count: m.jobs.WithLabelValues(lane, status), duration: m.jobDuration.WithLabelValues(lane),
			classCount: m.classJobs.WithLabelValues(class.String(), status), classDuration: m.classLatency.WithLabelValues(class.String())})
	}
	s := js.(*jobSeries)
	sec := d.Seconds()
	s.count.Inc()
	s.duration.Observe(sec)
	s.classCount.Inc()
	s.classDuration.Observe(sec)
}

type jobKey struct {
	class        consumer.Class
	lane, status string
}

type jobSeries struct {
	count, classCount       prometheus.Counter
	duration, classDuration prometheus.Observer
}

// Redelivered implements consumer.Observer.
func (m *Metrics) Redelivered(lane string) { m.redeliveries.WithLabelValues(m.lanes.label(lane)).Inc() }

// DeadLettered implements consumer.Observer.
func (m *Metrics) DeadLettered(lane, reason string) {
	m.deadLetters.WithLabelValues(m.lanes.label(lane), reason).Inc()
}

// Duplicate implements consumer.Observer.
func (m *Metrics) Duplicate(lane, source string) {
	m.duplicates.WithLabelValues(m.lanes.label(lane), source).Inc()
}

// AdminAuthFailed counts an admin request with a missing or wrong token.
func (m *Metrics) AdminAuthFailed() { m.adminAuth.Inc() }

// DefaultMaxLanes is how many lanes get series of their own by default.
const DefaultMaxLanes = 100

// OtherLane labels the jobs of every lane past the first MaxLanes seen.
const OtherLane = "other"

// SetMaxLanes bounds the lane label: the first n lanes seen keep their
// name, later ones are reported as "other", so producers inventing lanes
// cannot create series without end. Call it before the first job.
func (m *Metrics) SetMaxLanes(n int) {
	m.lanes.mu.Lock()
	m.lanes.max = n
	m.lanes.mu.Unlock()
}

type lanes struct {
	mu    sync.RWMutex
	max   int
	known map[string]struct{}
}

func (l *lanes) label(lane string) string {
	l.mu.RLock()
	_, ok := l.known[lane]
	full := len(l.known) >= l.max
	l.mu.RUnlock()
	switch {
	case ok:
		return lane
	case full:
		return OtherLane
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.known) >= l.max {
		return OtherLane
	}
	l.known[lane] = struct{}{}
	return lane
}

// InFlight implements consumer.Observer.
func (m *Metrics) InFlight(delta int) {
	m.inFlight.Add(float64(delta))
	m.inFlightN.Add(int64(delta))
}

// InFlightJobs returns the jobs being processed now.
func (m *Metrics) InFlightJobs() int64 { return m.inFlightN.Load() }

// ConsumerPending implements consumer.Observer.
func (m *Metrics) ConsumerPending(class consumer.Class, pending, ackPending uint64, oldest time.Duration) {
	c := class.String()
	m.pending.WithLabelValues(c).Set(float64(pending))
	m.ackPending.WithLabelValues(c).Set(float64(ackPending))
	m.oldest.WithLabelValues(c).Set(oldest.Seconds())
	m.classMu.Lock()
	m.classes[c] = health.Class{Pending: pending, AckPending: ackPending, OldestSeconds: oldest.Seconds()}
	m.classMu.Unlock()
}

// Classes returns each class's last backlog reading.
func (m *Metrics) Classes() map[string]health.Class {
	m.classMu.Lock()
	defer m.classMu.Unlock()
	out := make(map[string]health.Class, len(m.classes))
	for k, v := range m.classes {
		out[k] = v
	}
	return out
}

// RegisterCache exports the cache's counters and gauges, read at scrape time
// so they are always current. redis_up is exported only when Redis is
// configured: a memory-only worker has no Redis to be down.
func (m *Metrics) RegisterCache(c *semcache.Cache) {
	m.Registry.MustRegister(&cacheCollector{c: c})
}

type cacheCollector struct{ c *semcache.Cache }

var (
	descHits      = prometheus.NewDesc("semantic_cache_hits_total", "Lookups answered without calling langextract (memory, Redis or a shared in-flight load).", nil, nil)
	descMisses    = prometheus.NewDesc("semantic_cache_misses_total", "Lookups that called langextract.", nil, nil)
	descEvictions = prometheus.NewDesc("semantic_cache_evictions_total", "Entries evicted from memory by the LRU.", nil, nil)
	descHitRate   = prometheus.NewDesc("semantic_cache_hit_rate", "Hits over lookups since start (0-1).", nil, nil)
	descSize      = prometheus.NewDesc("semantic_cache_size", "Entries in the in-memory tier.", nil, nil)
	descBytes     = prometheus.NewDesc("semantic_cache_memory_bytes", "Bytes held by the in-memory tier.", nil, nil)
	descTierHits  = prometheus.NewDesc("semantic_cache_tier_hits_total", "Hits by tier (memory, redis, shared).", []string{"tier"}, nil)
	descRedisUp   = prometheus.NewDesc("redis_up", "1 while the Redis cache tier is reachable, else 0.", nil, nil)
)

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descMisses, descEvictions, descHitRate, descSize, descBytes, descTierHits} {
		ch <- d
	}
	if cc.c.RedisEnabled() {
		ch <- descRedisUp
	}
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := cc.c.Metrics()
	ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(descHitRate, prometheus.GaugeValue, s.HitRate)
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(s.CurrentSize))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.MemoryBytes))
	ch <- prometheus.MustNewConstMetric(descTierHits, prometheus.CounterValue, float64(s.MemoryHits), "memory")
	ch <- prometheus.MustNewConstMetric(descTierHits, prometheus.CounterValue, float64(s.RedisHits), "redis")
	ch <- prometheus.MustNewConstMetric(descTierHits, prometheus.CounterValue, float64(s.SharedHits), "shared")
	if s.RedisEnabled {
		up := 0.0
		if s.RedisUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descRedisUp, prometheus.GaugeValue, up)
	}
}
