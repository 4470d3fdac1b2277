// Package server assembles a worker process from its configuration: NATS
// (connected or embedded), the topology, the scoring engine (langextract or
// the built-in analyzer, breaker, two-tier cache), the consumer pool, and the
// HTTP endpoints for health, metrics and administration. Run starts it and
// shuts it down in order.
package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/breaker"
	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/metrics"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/scoring"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/source"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// deniedPublish finds the subject of a refused publish in NATS's error.
var deniedPublish = regexp.MustCompile(`(?i)publish to "([^"]+)"`)

// Version is stamped at build time (-ldflags "-X ...server.Version=...").
var Version = "dev"

// Server is one worker process.
type Server struct {
	cfg     config.Config
	log     *zap.Logger
	Metrics *metrics.Metrics

	embedded *natsembed.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	redis    *redis.Client
	client   *langextract.Client // nil with the built-in analyzer
	breaker  *breaker.Breaker[*langextract.Analysis]
	Cache    *semcache.Cache
	Scorer   *scoring.Service
	worker   *consumer.Worker
	checker  *health.Checker
	streams  *topology.Watch

	listener  net.Listener
	warming   atomic.Bool
	leHealth  atomic.Pointer[leProbe]
	workerRef atomic.Pointer[consumer.Worker] // for the connection's error handler
	leProbes  singleflight.Group
	// traces flushes and removes the tracer provider (a no-op while
	// tracing is off).
	traces func(context.Context) error
}

type leProbe struct {
	at     time.Time
	status string
}

// New builds every part and connects to NATS and Redis. It does not start
// consuming; Run does. An error names what could not be set up.
func New(ctx context.Context, cfg config.Config, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = config.DefaultWorkerID()
	}
	s := &Server{cfg: cfg, log: log, Metrics: metrics.New()}
	s.Metrics.SetMaxLanes(cfg.MetricsMaxLanes)
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	var err error
	tc := cfg.Tracing.TracingConfig("hybridscore-worker", Version)
	if s.traces, err = tracing.Setup(ctx, tc); err != nil {
		return nil, err
	}
	if tc.On() {
		log.Info("tracing on", zap.String("exporter", cmp.Or(tc.Exporter, tracing.ExporterOTLP)), zap.String("service", tc.ServiceName),
			zap.String("endpoint", config.RedactURL(cmp.Or(tc.TracesEndpoint, tc.Endpoint))))
	}
	if s.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	if err := s.connectNATS(); err != nil {
		return nil, err
	}
	if err := s.buildEngine(ctx); err != nil {
		return nil, err
	}
	topo := topology.Config{Replicas: cfg.StreamReplicas, DuplicateWindow: cfg.DuplicateWindow, ResultsMaxAge: cfg.ResultsMaxAge,
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: max(20000, 8*cfg.WorkerPrefetch)}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// bind finds the consumer; with provisioning on it also recreates a
	// consumer (or stream) an operator deleted while the worker ran.
	bind := func(ctx context.Context) (jetstream.Consumer, error) {
		if err := s.provision(ctx, topo); err != nil {
			return nil, err
		}
		return s.js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	}
	cons, err := bind(pctx)
	if err != nil {
		return nil, fmt.Errorf("bind consumer: %w", err)
	}
	bindBulk := func(ctx context.Context) (jetstream.Consumer, error) {
		if err := s.provision(ctx, topo); err != nil {
			return nil, err
		}
		return s.js.Consumer(ctx, topology.BulkStream, topology.BulkConsumer)
	}
	bulk, err := bindBulk(pctx)
	if err != nil {
		return nil, fmt.Errorf("bind bulk consumer: %w", err)
	}
	// Streams made earlier keep their settings: say where they differ
	// from this worker's, so a changed setting is not believed in force.
	if diffs, err := topology.Drift(pctx, s.js, topo); err == nil {
		for _, d := range diffs {
			log.Warn(d + ": a stream made earlier keeps its settings; edit it with the NATS tools (docs/operations.md#rolling-update)")
		}
	}
	// The consumer's own settings rule (an operator may have set them).
	cc := cons.CachedInfo().Config
	handler := &scoring.JobHandler{Scorer: s.Scorer, WorkerID: cfg.WorkerID, RetryBackoff: cfg.RetryBackoff,
		Limits: job.Limits{MaxTextBytes: cfg.MaxTextBytes, MaxJobBytes: cfg.MaxJobBytes}}
	s.worker, err = consumer.New(s.nc, s.js, cons, handler, consumer.Config{
		Concurrency: cfg.WorkerConcurrency, Prefetch: cfg.WorkerPrefetch, MaxHeldBytes: cfg.WorkerMaxHeldBytes,
		AckWait: cc.AckWait, MaxDeliver: cc.MaxDeliver, PublishTimeout: cfg.PublishTimeout, OutageRetryFor: cfg.OutageRetryFor,
		DrainTimeout: cfg.DrainTimeout, Bind: bind, Bulk: bulk, BindBulk: bindBulk, BulkShare: cfg.WorkerBulkShare,
		Logger: log, Observer: s.Metrics,
	})
	if err != nil {
		return nil, err
	}
	handler.ReservedReplies = []string{s.worker.Inbox()}
	if p := cfg.NATSAuth.InboxPrefix(cfg.NATSURL); p != "" && p != "_INBOX" {
		// Every worker's inbox: no job answers into another's requests.
		handler.ReservedReplies = append(handler.ReservedReplies, p+".")
	}
	handler.LegacyClaims = s.worker.LegacyClaims
	s.workerRef.Store(s.worker)
	s.streams = &topology.Watch{JS: s.js, Config: topo, Provision: cfg.Provision, Changed: func(missing []string, err error) {
		switch {
		case len(missing) > 0:
			s.log.Error("JetStream streams missing: jobs cannot be answered", zap.Strings("streams", missing), zap.Bool("provision", cfg.Provision), zap.Error(err))
		default:
			s.log.Info("JetStream streams all present again")
		}
	}, Provisioned: func(streams []string) {
		s.log.Warn("JetStream streams were missing and are created again, empty: what they held is gone", zap.Strings("streams", streams))
	}}
	s.checker = &health.Checker{Version: Version, Start: time.Now(),
		Streams:     s.streams.Missing,
		NATS:        func() bool { return s.nc.IsConnected() },
		Redis:       func() (bool, bool) { return s.Cache.RedisEnabled(), s.Cache.RedisUp() },
		Langextract: s.langextractStatus,
		Classes:     s.Metrics.Classes,
	}
	ok = true
	return s, nil
}

// provision creates what is missing of the topology, with provisioning
// on. Once the worker runs (a consumer bound again after an operator
// deleted it, or its stream) it goes through the stream watch, which warns
// when a stream had to be created again: whatever it held is gone.
func (s *Server) provision(ctx context.Context, topo topology.Config) error {
	if !s.cfg.Provision {
		return nil
	}
	if s.streams != nil {
		if _, err := s.streams.Check(ctx); err != nil {
			return err
		}
	}
	// The consumers (and, before the watch exists, at start, the streams).
	_, err := topology.Provision(ctx, s.js, topo)
	return err
}

func (s *Server) connectNATS() error {
	cfg := s.cfg
	url := cfg.NATSURL
	if url == "" {
		host, portStr, _ := net.SplitHostPort(cfg.NATSListen)
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return fmt.Errorf("NATS_LISTEN: %w", err)
		}
		if port == 0 {
			port = -1
		}
		s.embedded, err = natsembed.Start(natsembed.Options{Host: host, Port: port, StoreDir: cfg.NATSStoreDir, SyncAlways: cfg.NATSSyncAlways,
			User: cfg.NATSUser, Password: cfg.NATSPassword})
		if errors.Is(err, natsembed.ErrPortInUse) {
			return fmt.Errorf("embedded NATS on %s: %w (another worker's embedded server? a second worker joins it with NATS_URL=nats://%s, or starts its own with another NATS_LISTEN and NATS_STORE_DIR)",
				cfg.NATSListen, err, net.JoinHostPort(cmp.Or(host, "127.0.0.1"), portStr))
		}
		if errors.Is(err, natsembed.ErrStoreInUse) {
			return fmt.Errorf("embedded NATS: %w (a second worker on this machine joins the first one's server with NATS_URL, or starts its own with another NATS_STORE_DIR and NATS_LISTEN)", err)
		}
		if err != nil {
			return fmt.Errorf("embedded NATS on %s: %w", cfg.NATSListen, err)
		}
		url = s.embedded.URL()
		s.log.Info("embedded NATS server started", zap.String("url", url), zap.Bool("sync_always", cfg.NATSSyncAlways))
	}
	opts := []nats.Option{
		nats.Name("hybridscore-worker " + cfg.WorkerID),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// Closing the connection at shutdown disconnects it too.
			if !nc.IsClosed() {
				s.log.Warn("NATS disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrlRedacted())) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.log.Warn("NATS error", zap.Error(err))
			if m := deniedPublish.FindStringSubmatch(err.Error()); m != nil && errors.Is(err, nats.ErrPermissionViolation) {
				if w := s.workerRef.Load(); w != nil {
					w.Denied(m[1])
				}
			}
		}),
	}
	auth, err := cfg.NATSAuth.Options(url)
	if err != nil {
		return err
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("NATS at %s (NATS_URL): %w", config.RedactURL(url), config.RedactError(err, url))
	}
	s.nc = nc
	s.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	return nil
}

func (s *Server) buildEngine(ctx context.Context) error {
	cfg := s.cfg
	src := source.Builtin
	if cfg.LangextractURL != "" {
		client, err := langextract.New(langextract.Config{BaseURL: cfg.LangextractURL, Timeout: config.Seconds(cfg.LangextractTimeout),
			MaxAttempts: cfg.LangextractMaxRetries, MaxURLBytes: cfg.LangextractMaxURLBytes, Observer: s.Metrics.ObserveLangextract})
		if err != nil {
			return fmt.Errorf("LANGEXTRACT_URL: %w", err)
		}
		s.client = client
		s.breaker = source.NewBreaker(uint32(cfg.CircuitBreakerThreshold), config.Seconds(cfg.CircuitBreakerTimeout), func(from, to breaker.State) {
			s.Metrics.BreakerChanged(from, to)
			s.log.Warn("circuit breaker", zap.String("from", from.String()), zap.String("to", to.String()))
		})
		src = source.Guard(s.breaker, client)
	}
	// A load must outlive every attempt the client may make (and its
	// backoff): cut short, the client would report the caller giving up,
	// which the breaker rightly does not count.
	worstCase := config.Seconds(cfg.LangextractTimeout)*time.Duration(cfg.LangextractMaxRetries) + 10*time.Second
	cc := semcache.Config{MaxSize: cfg.SemanticCacheMaxSize, TTL: config.Seconds(cfg.SemanticCacheTTLSeconds),
		WaitTimeout: worstCase, LoadTimeout: worstCase,
		OnRedisState: func(up bool, cause error) {
			if up {
				s.log.Info("Redis cache tier back in use")
			} else {
				s.log.Warn("Redis unavailable - using in-memory cache only", zap.Error(cause))
			}
		}}
	if on, _ := cfg.RedisEnabled(); on {
		// go-redis logs every failed dial to stderr on its own; during an
		// outage that is one line a second per worker. The cache already
		// reports Redis down (log, health, redis_up), so keep these at debug.
		redis.SetLogger(redisLogger{s.log})
		opts := &redis.Options{Addr: net.JoinHostPort(cfg.RedisHost, strconv.Itoa(cfg.RedisPort)), Password: cfg.RedisPassword, DB: cfg.RedisDB,
			ContextTimeoutEnabled: true, DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
			// One retry: after Redis restarts, the pool still holds dead
			// connections, and without a retry each would fail a command
			// and mark the tier down again.
			PoolTimeout: time.Second, MaxRetries: 1}
		if cfg.RedisTLS {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.RedisHost}
			if cfg.RedisTLSCA != "" {
				pem, err := os.ReadFile(cfg.RedisTLSCA)
				if err != nil {
					return fmt.Errorf("REDIS_TLS_CA: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("REDIS_TLS_CA %s: no PEM certificate", cfg.RedisTLSCA)
				}
				opts.TLSConfig.RootCAs = pool
			}
		}
		s.redis = redis.NewClient(opts)
		cc.Redis = s.redis
	}
	var err error
	if s.Cache, err = semcache.New(ctx, cc, source.Loader{Source: src}); err != nil {
		return err
	}
	s.Metrics.RegisterCache(s.Cache)
	comb, _ := cfg.Combiner()
	weights, _ := cfg.SimilarityWeights()
	s.Scorer, err = scoring.New(s.Cache, scoring.Config{Combiner: comb, Weights: weights}, s.Metrics)
	return err
}

type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis client", zap.String("message", fmt.Sprintf(format, v...)))
}

// langextractStatus is the langextract_client component: unhealthy while
// the breaker is open or the service's /health fails; probed at most every
// 5 s so /health stays cheap.
func (s *Server) langextractStatus(ctx context.Context) string {
	if s.client == nil {
		return health.Healthy // the built-in analyzer
	}
	if s.breaker.State() == breaker.Open {
		return health.Unhealthy
	}
	if p := s.leHealth.Load(); p != nil && time.Since(p.at) < 5*time.Second {
		return p.status
	}
	// One probe at a time, whatever the number of /health requests, and
	// detached from them: a flood of unauthenticated health checks cannot
	// multiply requests to langextract.
	v, _, _ := s.leProbes.Do("health", func() (any, error) { return s.probeLangextract(), nil })
	return v.(string)
}

func (s *Server) probeLangextract() string {
	hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := health.Unhealthy
	if h, err := s.client.Health(hctx); err == nil {
		switch h.Status {
		case "healthy":
			st = health.Healthy
		case "degraded":
			st = health.Degraded
		}
	}
	if s.breaker.State() == breaker.HalfOpen && st == health.Healthy {
		st = health.Degraded
	}
	s.leHealth.Store(&leProbe{at: time.Now(), status: st})
	return st
}

// WorkerConfig returns the consumer settings the worker runs with (the
// consumer's own AckWait and MaxDeliver, which an operator may have set).
func (s *Server) WorkerConfig() consumer.Config { return s.worker.Config() }

// WorkerInbox is the prefix of the subjects the worker's own requests are
// answered on, which no job may name as its reply subject.
func (s *Server) WorkerInbox() string { return s.worker.Inbox() }

// NATSURL is the URL of the NATS server in use (the embedded one's when
// NATS_URL is empty).
func (s *Server) NATSURL() string { return s.nc.ConnectedUrlRedacted() }

// HTTPAddr is the address the HTTP endpoints listen on.
func (s *Server) HTTPAddr() string { return s.listener.Addr().String() }

// Run serves HTTP, warms the cache, consumes until ctx ends, then shuts down
// in order: not ready, drain the consumer, flush, close NATS, Redis, the
// embedded server and HTTP.
func (s *Server) Run(ctx context.Context) error {
	// Every limit set: a client that sends slowly, reads slowly or keeps an
	// idle connection open cannot hold the worker's resources for long.
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: s.cfg.HTTPIdleTimeout, MaxHeaderBytes: 64 << 10}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(s.listener) }()
	s.log.Info("HTTP listening", zap.String("addr", s.HTTPAddr()))
	defer s.close()
	svc, err := s.startService(s.checker.Start)
	if err != nil {
		return err
	}
	// Stopped before the connection drains (close): the worker leaves the
	// service listings as it stops.
	defer func() { _ = svc.Stop() }()

	if f := s.cfg.SemanticCacheWarmFile; f != "" {
		s.warming.Store(true)
		qs, err := ReadWarmFile(f)
		if err != nil {
			return fmt.Errorf("SEMANTIC_CACHE_WARM_FILE: %w", err)
		}
		n, err := s.Cache.Warm(ctx, qs)
		s.log.Info("cache warmed", zap.Int("cached", n), zap.Int("texts", len(qs)), zap.Error(err))
		s.warming.Store(false)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); s.streams.Run(wctx) }()
	err = s.worker.Run(ctx)
	stopWatch()
	<-watched
	// Disconnected, a flush would only wait out its timeout: what the
	// reconnect buffer holds is nothing the server took (no PubAck, no
	// ack), so the jobs it concerns are delivered again.
	if !s.nc.IsConnected() {
		s.log.Info("NATS not connected at shutdown: nothing to flush; unacknowledged jobs are delivered again")
	} else if ferr := s.nc.FlushTimeout(5 * time.Second); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		s.log.Warn("flush at shutdown", zap.Error(ferr))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-httpDone
	s.log.Info("stopped")
	return err
}

func (s *Server) close() {
	if s.nc != nil {
		if s.nc.IsConnected() {
			_ = s.nc.Drain()
			for i := 0; i < 100 && !s.nc.IsClosed(); i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		s.nc.Close()
	}
	if s.Cache != nil {
		s.Cache.Close()
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
	if s.embedded != nil {
		s.embedded.Stop()
	}
	if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.traces != nil {
		// Last: the spans of the jobs finished while draining go too.
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.traces(tctx); err != nil {
			s.log.Warn("flushing traces at shutdown", zap.Error(err))
		}
		cancel()
		s.traces = nil
	}
}

// ReadWarmFile reads SEMANTIC_CACHE_WARM_FILE: JSON as ParseWarm reads it
// (an export of another worker's cache among them), or else one text per
// line.
func ReadWarmFile(path string) ([]analysis.Query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(b); bytes.HasPrefix(t, []byte("[")) || bytes.HasPrefix(t, []byte("{")) {
		qs, err := ParseWarm(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return qs, nil
	}
	var texts []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			texts = append(texts, line)
		}
	}
	return analysis.Texts(texts, analysis.Query{}), sc.Err()
}

// Ready reports whether the worker consumes (bound, warmed, not draining).
func (s *Server) Ready() bool { return !s.warming.Load() && s.worker.Ready() }

// Handler returns the HTTP endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		rep := s.checker.Report(r.Context())
		code := http.StatusOK
		if rep.Status == health.Unhealthy {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rep)
	})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "alive"}) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.worker.Draining():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		case !s.Ready():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		case !s.nc.IsConnected():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "nats disconnected"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	admin := &Admin{Token: s.cfg.AdminToken, Cache: s.Cache, AuthFailed: s.Metrics.AdminAuthFailed,
		ResetBreaker: s.resetBreaker, BreakerState: s.breakerState}
	admin.Register(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
