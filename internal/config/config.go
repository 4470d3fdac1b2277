// Package config loads the worker's configuration
// (docs/contract.md#configuration) from environment variables and
// command-line flags into one plain struct, with the defaults in one place
// (the struct tags) and Validate checking what types alone cannot. Every
// environment variable is also a flag.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// Config is the worker's configuration. Field tags give each setting's
// flag, environment variable and default; kong reads them.
type Config struct {
	// NATS.
	NATSURL string `name:"nats-url" env:"NATS_URL" help:"NATS servers; empty starts an embedded server with JetStream."`
	// Authentication and TLS, shared with the publisher.
	NATSAuth       `embed:""`
	NATSStoreDir   string `name:"nats-store-dir" env:"NATS_STORE_DIR" help:"Embedded server: JetStream store directory (default: $XDG_STATE_HOME/hybridscore/nats or ~/.local/state/hybridscore/nats)."`
	NATSListen     string `name:"nats-listen" env:"NATS_LISTEN" default:"127.0.0.1:4222" help:"Embedded server: address to listen on; other than loopback only with NATS_USER and NATS_PASSWORD, which it then requires."`
	NATSSyncAlways bool   `name:"nats-sync-always" env:"NATS_SYNC_ALWAYS" help:"Embedded server: fsync every JetStream write before acknowledging it."`

	// Topology.
	Provision       bool          `name:"provision" env:"PROVISION" default:"true" negatable:"" help:"Create missing streams and the consumer at start."`
	StreamReplicas  int           `name:"stream-replicas" env:"STREAM_REPLICAS" default:"1" help:"Replicas of provisioned streams (3 on a cluster)."`
	DuplicateWindow time.Duration `name:"duplicate-window" env:"DUPLICATE_WINDOW" default:"2m" help:"Deduplication window of the job and result streams."`
	ResultsMaxAge   time.Duration `name:"results-max-age" env:"RESULTS_MAX_AGE" default:"24h" help:"How long results are kept."`
	AckWait         time.Duration `name:"ack-wait" env:"ACK_WAIT" default:"30s" help:"Consumer AckWait (kept alive with in-progress acks)."`
	MaxDeliver      int           `name:"max-deliver" env:"MAX_DELIVER" default:"5" help:"Consumer MaxDeliver; -1 unlimited."`

	// langextract and breaker.
	LangextractURL          string  `name:"langextract-url" env:"LANGEXTRACT_URL" help:"langextract base URL; empty uses the built-in analyzer."`
	LangextractTimeout      Timeout `name:"langextract-timeout" env:"LANGEXTRACT_TIMEOUT" default:"10s" help:"Per langextract request (10s; a number of seconds such as 10.0 is read too)."`
	LangextractMaxRetries   int     `name:"langextract-max-retries" env:"LANGEXTRACT_MAX_RETRIES" default:"3" help:"Attempts for 503s and timeouts."`
	LangextractMaxURLBytes  int     `name:"langextract-max-url-bytes" env:"LANGEXTRACT_MAX_URL_BYTES" default:"8192" help:"Longest request URL sent to langextract (the text travels in the query string); a longer one is not sent and the job degrades with validation_error."`
	CircuitBreakerThreshold int     `name:"circuit-breaker-threshold" env:"CIRCUIT_BREAKER_THRESHOLD" default:"5" help:"Consecutive failures that open the breaker."`
	CircuitBreakerTimeout   Timeout `name:"circuit-breaker-timeout" env:"CIRCUIT_BREAKER_TIMEOUT" default:"60s" help:"Open before a half-open probe (60s; a number of seconds such as 60 is read too)."`

	// Cache.
	SemanticCacheMaxSize     int     `name:"semantic-cache-max-size" env:"SEMANTIC_CACHE_MAX_SIZE" default:"1000" help:"In-memory cache entries."`
	SemanticCacheTTLSeconds  float64 `name:"semantic-cache-ttl-seconds" env:"SEMANTIC_CACHE_TTL_SECONDS" default:"3600" help:"Entry time-to-live in both tiers."`
	SemanticCacheEnableRedis string  `name:"semantic-cache-enable-redis" env:"SEMANTIC_CACHE_ENABLE_REDIS" help:"true or false; default true when REDIS_HOST is set."`
	SemanticCacheWarmFile    string  `name:"semantic-cache-warm-file" env:"SEMANTIC_CACHE_WARM_FILE" help:"Texts (one per line, or a JSON array) analysed before consuming starts."`
	RedisHost                string  `name:"redis-host" env:"REDIS_HOST" help:"Redis host for the shared cache tier."`
	RedisPort                int     `name:"redis-port" env:"REDIS_PORT" default:"6379" help:"Redis port."`
	RedisPassword            string  `name:"redis-password" env:"REDIS_PASSWORD" help:"Redis password."`
	RedisDB                  int     `name:"redis-db" env:"REDIS_DB" default:"0" help:"Redis database."`
	RedisTLS                 bool    `name:"redis-tls" env:"REDIS_TLS" help:"Connect to Redis over TLS."`
	RedisTLSCA               string  `name:"redis-tls-ca" env:"REDIS_TLS_CA" help:"CA certificate file Redis's certificate must chain to (default: the system roots)."`

	// Worker.
	WorkerConcurrency  int           `name:"worker-concurrency" env:"WORKER_CONCURRENCY" default:"128" help:"Jobs waiting on langextract or Redis at once per process (cached jobs do not wait)."`
	WorkerPrefetch     int           `name:"worker-prefetch" env:"WORKER_PREFETCH" default:"1536" help:"Jobs held at once (buffered, being scored, awaiting their PubAck); each is kept alive with in-progress acks. At least 4: a quarter is kept for interactive jobs."`
	WorkerBulkShare    float64       `name:"worker-bulk-share" env:"WORKER_BULK_SHARE" default:"0.1" help:"Share of capacity bulk jobs (scoring.bulk.>) are guaranteed while interactive jobs saturate the worker; all of it while there are none."`
	WorkerMaxHeldBytes int           `name:"worker-max-held-bytes" env:"WORKER_MAX_HELD_BYTES" default:"67108864" help:"Bytes of the jobs held at once (raised to twice the server's maximum payload)."`
	PublishTimeout     time.Duration `name:"publish-timeout" env:"WORKER_PUBLISH_TIMEOUT" default:"5s" help:"Wait for one PubAck or lookup before retrying."`
	OutageRetryFor     time.Duration `name:"outage-retry-for" env:"WORKER_OUTAGE_RETRY_FOR" default:"2m" help:"In-process retries of NATS failures before a job is redelivered later (never on its last delivery)."`
	WorkerID           string        `name:"worker-id" env:"WORKER_ID" help:"Identity in results; default host name and pid."`
	RetryBackoff       time.Duration `name:"retry-backoff" env:"WORKER_RETRY_BACKOFF" default:"1s" help:"First on_fallback=retry delay, doubled per delivery."`
	DrainTimeout       time.Duration `name:"drain-timeout" env:"WORKER_DRAIN_TIMEOUT" default:"25s" help:"Time to finish in-flight jobs at shutdown."`
	MaxTextBytes       int           `name:"max-text-bytes" env:"MAX_TEXT_BYTES" default:"16384" help:"Limit of each job text."`
	MaxJobBytes        int           `name:"max-job-bytes" env:"MAX_JOB_BYTES" default:"65536" help:"Limit of a whole job message."`

	// HTTP and logs.
	MetricsMaxLanes int           `name:"metrics-max-lanes" env:"METRICS_MAX_LANES" default:"100" help:"Lanes with series of their own; later lanes are counted as \"other\"."`
	HTTPAddr        string        `name:"http-addr" env:"HTTP_ADDR" default:":8053" help:"Health, metrics and admin endpoints."`
	HTTPIdleTimeout time.Duration `name:"http-idle-timeout" env:"HTTP_IDLE_TIMEOUT" default:"60s" help:"Idle keep-alive connections to the HTTP endpoints are closed after this."`
	AdminToken      string        `name:"admin-token" env:"ADMIN_TOKEN" help:"Bearer token of the admin endpoints; empty refuses them."`
	LogLevel        string        `name:"log-level" env:"LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"debug, info, warn or error."`
	LogFormat       string        `name:"log-format" env:"LOG_FORMAT" default:"json" enum:"json,console" help:"json or console."`
	// Tracing (OpenTelemetry), shared with the publisher.
	Tracing `embed:""`

	// Scoring.
	HybridVectorWeight       float64 `name:"hybrid-vector-weight" env:"HYBRID_VECTOR_WEIGHT" default:"0.7" help:"Default vector weight."`
	HybridPatternWeight      float64 `name:"hybrid-pattern-weight" env:"HYBRID_PATTERN_WEIGHT" default:"0.3" help:"Default pattern weight."`
	HybridMinWeight          float64 `name:"hybrid-min-weight" env:"HYBRID_MIN_WEIGHT" default:"0.1" help:"Lower weight bound."`
	HybridMaxWeight          float64 `name:"hybrid-max-weight" env:"HYBRID_MAX_WEIGHT" default:"0.9" help:"Upper weight bound."`
	HybridAdaptive           bool    `name:"hybrid-adaptive" env:"HYBRID_ADAPTIVE" default:"true" negatable:"" help:"Adapt weights to task characteristics."`
	HybridStrategy           string  `name:"hybrid-strategy" env:"HYBRID_STRATEGY" default:"hybrid" help:"fixed, complexity_based, domain_based or hybrid."`
	PatternSimilarityWeights string  `name:"pattern-similarity-weights" env:"PATTERN_SIMILARITY_WEIGHTS" default:"concept=0.3,theme=0.2,domain=0.2,structure=0.15,relationship=0.15" help:"Component weights, summing to 1."`
}

// DLQMaxAge is how long SCORING_DLQ keeps a dead letter.
const DLQMaxAge = 7 * 24 * time.Hour

// MinPrefetch is the smallest WORKER_PREFETCH that serves both classes.
const MinPrefetch = 4

// ErrInvalid wraps every validation failure; the message names the variable.
var ErrInvalid = errors.New("config: invalid")

func bad(env, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, env, fmt.Sprintf(format, args...))
}

// Validate checks ranges and cross-field rules, naming the variable at fault.
func (c *Config) Validate() error {
	var errs []error
	positive := func(env string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, bad(env, "must be a positive number, got %v", v))
		}
	}
	positive("LANGEXTRACT_TIMEOUT", float64(c.LangextractTimeout))
	positive("CIRCUIT_BREAKER_TIMEOUT", float64(c.CircuitBreakerTimeout))
	positive("SEMANTIC_CACHE_TTL_SECONDS", c.SemanticCacheTTLSeconds)
	for _, v := range []struct {
		env string
		val int
		min int
	}{
		{"LANGEXTRACT_MAX_RETRIES", c.LangextractMaxRetries, 1},
		{"LANGEXTRACT_MAX_URL_BYTES", c.LangextractMaxURLBytes, 256},
		{"CIRCUIT_BREAKER_THRESHOLD", c.CircuitBreakerThreshold, 1},
		{"SEMANTIC_CACHE_MAX_SIZE", c.SemanticCacheMaxSize, 1},
		{"WORKER_CONCURRENCY", c.WorkerConcurrency, 1},
		{"WORKER_MAX_HELD_BYTES", c.WorkerMaxHeldBytes, 1},
		{"STREAM_REPLICAS", c.StreamReplicas, 1},
		{"REDIS_DB", c.RedisDB, 0},
		{"MAX_TEXT_BYTES", c.MaxTextBytes, 1},
		{"MAX_JOB_BYTES", c.MaxJobBytes, 64},
		{"METRICS_MAX_LANES", c.MetricsMaxLanes, 1},
	} {
		if v.val < v.min {
			errs = append(errs, bad(v.env, "must be at least %d, got %d", v.min, v.val))
		}
	}
	if c.WorkerPrefetch < MinPrefetch {
		// The worker keeps a quarter of it (rounded down) free of bulk jobs
		// for interactive ones: below 4 that quarter is nothing, and a bulk
		// backlog holding all of it would never let an interactive job in.
		errs = append(errs, bad("WORKER_PREFETCH", "must be at least %d (a quarter of it is kept for interactive jobs while bulk jobs are held), got %d", MinPrefetch, c.WorkerPrefetch))
	}
	if !(c.WorkerBulkShare > 0 && c.WorkerBulkShare < 1) {
		errs = append(errs, bad("WORKER_BULK_SHARE", "must be in (0, 1), got %v", c.WorkerBulkShare))
	}
	if c.MaxDeliver == 0 || c.MaxDeliver < -1 {
		errs = append(errs, bad("MAX_DELIVER", "must be positive or -1 (unlimited), got %d", c.MaxDeliver))
	}
	if c.RedisPort < 1 || c.RedisPort > 65535 {
		errs = append(errs, bad("REDIS_PORT", "must be a TCP port, got %d", c.RedisPort))
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{{"DUPLICATE_WINDOW", c.DuplicateWindow}, {"RESULTS_MAX_AGE", c.ResultsMaxAge}, {"ACK_WAIT", c.AckWait}, {"WORKER_RETRY_BACKOFF", c.RetryBackoff}, {"WORKER_DRAIN_TIMEOUT", c.DrainTimeout},
		{"WORKER_PUBLISH_TIMEOUT", c.PublishTimeout}, {"HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout}, {"WORKER_OUTAGE_RETRY_FOR", c.OutageRetryFor}} {
		if d.v <= 0 {
			errs = append(errs, bad(d.env, "must be a positive duration, got %s", d.v))
		}
	}
	// NATS refuses a stream whose window outlasts its messages, and the
	// results and dead-letter streams are made after the jobs streams:
	// caught here, not half way through provisioning (without it, the
	// window is the existing streams' business).
	if c.Provision && c.DuplicateWindow > c.ResultsMaxAge && c.ResultsMaxAge > 0 {
		errs = append(errs, bad("DUPLICATE_WINDOW", "must not be longer than RESULTS_MAX_AGE (%s), got %s", c.ResultsMaxAge, c.DuplicateWindow))
	}
	if c.Provision && c.DuplicateWindow > DLQMaxAge {
		errs = append(errs, bad("DUPLICATE_WINDOW", "must not be longer than SCORING_DLQ's maximum age (%s), got %s", DLQMaxAge, c.DuplicateWindow))
	}
	if _, err := c.RedisEnabled(); err != nil {
		errs = append(errs, err)
	}
	if c.NATSURL != "" {
		if err := CheckNATSURL(c.NATSURL); err != nil {
			errs = append(errs, err)
		}
	} else if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
		errs = append(errs, bad("NATS_LISTEN", "%v", err))
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, bad("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY go together"))
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Combiner(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.SimilarityWeights(); err != nil {
		errs = append(errs, err)
	}
	if c.SemanticCacheWarmFile != "" {
		if _, err := os.Stat(c.SemanticCacheWarmFile); err != nil {
			errs = append(errs, bad("SEMANTIC_CACHE_WARM_FILE", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// RedisEnabled resolves SEMANTIC_CACHE_ENABLE_REDIS against REDIS_HOST.
func (c *Config) RedisEnabled() (bool, error) {
	if c.SemanticCacheEnableRedis == "" {
		return c.RedisHost != "", nil
	}
	on, err := strconv.ParseBool(c.SemanticCacheEnableRedis)
	if err != nil {
		return false, bad("SEMANTIC_CACHE_ENABLE_REDIS", "want true or false, got %q", c.SemanticCacheEnableRedis)
	}
	if on && c.RedisHost == "" {
		return false, bad("SEMANTIC_CACHE_ENABLE_REDIS", "true needs REDIS_HOST")
	}
	return on, nil
}

// Combiner returns the combiner configuration.
func (c *Config) Combiner() (combiner.Config, error) {
	s, err := combiner.ParseStrategy(c.HybridStrategy)
	if err != nil {
		return combiner.Config{}, bad("HYBRID_STRATEGY", "%v", err)
	}
	cc := combiner.Config{VectorWeight: c.HybridVectorWeight, PatternWeight: c.HybridPatternWeight,
		MinWeight: c.HybridMinWeight, MaxWeight: c.HybridMaxWeight, Adaptive: c.HybridAdaptive, Strategy: s}
	if err := cc.Validate(); err != nil {
		return cc, bad("HYBRID_VECTOR_WEIGHT/HYBRID_PATTERN_WEIGHT/HYBRID_MIN_WEIGHT/HYBRID_MAX_WEIGHT", "%v", err)
	}
	return cc, nil
}

// SimilarityWeights parses PATTERN_SIMILARITY_WEIGHTS.
func (c *Config) SimilarityWeights() (similarity.Weights, error) {
	w, err := similarity.ParseWeights(c.PatternSimilarityWeights)
	if err != nil {
		return w, bad("PATTERN_SIMILARITY_WEIGHTS", "%v", err)
	}
	return w, nil
}

// DefaultWorkerID is the host name and pid.
func DefaultWorkerID() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "worker"
	}
	return strings.ReplaceAll(h, " ", "-") + "-" + strconv.Itoa(os.Getpid())
}

// CacheEntryBytes is what one semantic-cache entry is taken to cost when
// the worker sizes its memory: features of a text of a few KiB, the entry
// and its share of the map, rounded up.
const CacheEntryBytes = 8 << 10

// memoryHeadroom is the memory the worker needs beside the held jobs and
// the cache: the runtime, the NATS client's buffers, the pool's goroutines,
// HTTP and the metrics.
const memoryHeadroom = 64 << 20

// CacheBytes is the memory the in-memory cache tier may take when full.
func (c *Config) CacheBytes() int64 { return int64(c.SemanticCacheMaxSize) * CacheEntryBytes }

// MemoryLimit is the worker's soft memory limit (debug.SetMemoryLimit)
// unless GOMEMLIMIT is set: the held jobs' bytes, the full cache, and
// headroom. The garbage collector works harder as the heap nears it, so
// garbage never piles up past it (at GOGC=400 it would reach five times
// the live heap); it is soft: a live heap above it is never refused.
func (c *Config) MemoryLimit() int64 {
	return int64(c.WorkerMaxHeldBytes) + c.CacheBytes() + memoryHeadroom
}

// UsageExit is the kong.Exit of both programs: kong exits when it cannot
// parse the command line or the environment, and any such failure is a
// usage error (exit 80), a variable of the wrong type included (kong
// would exit 1 for that one); --help and --version exit 0.
func UsageExit(code int) {
	if code != 0 {
		code = 80
	}
	os.Exit(code)
}
