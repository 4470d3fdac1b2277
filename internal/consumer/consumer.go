// Package consumer is the JetStream pump of the worker: it pulls jobs from
// the shared durable consumer, hands each to a Handler, and carries out the
// Handler's Reply. It is the one place that acks, naks and terminates job
// messages:
//
//   - Publish: the result is stored once per job by package resultstore
//     (one write on the job's own subject, which the server refuses a
//     second time; a repeat answers the requester again), then the job is
//     acked;
//   - Retry: NakWithDelay (on_fallback retry);
//   - Reject: dead letter, rejected result, Term;
//   - Fail (a bug): nak with backoff, dead letter "internal" on the last
//     delivery;
//   - Requeue (shutdown): Nak at once.
//
// Failures of the infrastructure (a results stream that cannot store, NATS
// itself) are retried in-process with exponential
// backoff and jitter while the message is kept alive, so they do not spend
// the job's deliveries; only after OutageRetryFor is the job naked with a
// delay. Every message the process holds, whatever it waits on, gets
// in-progress acks before its AckWait runs out.
//
// The pipeline: a puller fetches exactly as many messages as there is room
// for (by count and bytes), so nothing is buffered where it cannot be kept
// alive; a pool of GOMAXPROCS goroutines runs the Handler and every step
// that only computes; a Handler that must wait is run on its own goroutine,
// at most Concurrency at once; results are stored asynchronously, and the
// store's news comes back as events to the pool.
package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/resultstore"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Observer receives the worker's events (metrics). Implementations must be
// safe for concurrent use.
type Observer interface {
	JobDone(class Class, lane, status string, d time.Duration)
	Redelivered(lane string)
	DeadLettered(lane, reason string)
	// Duplicate counts a job answered by an earlier result: source is
	// "record" (the server refused a second result on the job's subject)
	// or "claim" (an earlier version's claim).
	Duplicate(lane, source string)
	InFlight(delta int)
	// ConsumerPending reports a class's backlog: jobs not yet delivered,
	// delivered and not acknowledged, and the age of the oldest job in its
	// stream.
	ConsumerPending(class Class, pending, ackPending uint64, oldest time.Duration)
}

// Class is a job's service class. Interactive jobs are served first; bulk
// jobs (batch rescoring) get a guaranteed share of the worker's capacity
// while interactive work saturates it, and all of it while there is none.
type Class uint8

// Classes.
const (
	Interactive Class = iota
	Bulk
)

// String returns interactive or bulk.
func (c Class) String() string {
	if c == Bulk {
		return "bulk"
	}
	return "interactive"
}

// Job outcome labels beyond the result statuses.
const (
	StatusRetried      = "retried"       // redelivered later under on_fallback retry
	StatusNaked        = "naked"         // not finished (publish failed, shutdown): redelivered
	StatusDuplicate    = "duplicate"     // answered before: acked without a second result
	StatusDeadLettered = "dead_lettered" // conflict, internal error or last delivery
)

// Headers. A result carries HeaderDigest (and HeaderRepeat when sent
// again); a dead letter carries the rest, and its payload is the job
// unchanged. A job replayed from a dead letter or requeued carries
// HeaderJobID too: its Nats-Msg-Id is then the copy's own, and a job
// whose payload cannot be read is named by HeaderJobID (CarriedJobID).
const (
	HeaderDigest    = resultstore.HeaderDigest
	HeaderRepeat    = resultstore.HeaderRepeat
	HeaderReason    = "Hybridscore-Reason"
	HeaderError     = "Hybridscore-Error"
	HeaderJobID     = "Hybridscore-Job-Id"
	HeaderSubject   = "Hybridscore-Subject"
	HeaderStreamSeq = "Hybridscore-Stream-Seq"
	HeaderDelivery  = "Hybridscore-Delivery"
	// HeaderPayloadHash, on a dead letter, is the xxhash64 (hex) of the
	// payload: a producer that publishes the job again tells a corrected
	// job from the one dead-lettered without reading the payload.
	HeaderPayloadHash = "Hybridscore-Payload-Hash"
)

// Config configures a Worker. The values come from package config (the one
// home of defaults); a zero value takes config's default, and -1 means
// unlimited where noted, as in go-redis.
type Config struct {
	// Concurrency bounds Handler calls that may wait (on langextract,
	// Redis) at once.
	Concurrency int
	// Prefetch bounds the messages held at once: buffered, being handled
	// or waiting on a PubAck.
	Prefetch int
	// MaxHeldBytes bounds the bytes of the messages held at once; it is
	// raised to twice the server's maximum payload when lower, so that any
	// message fits.
	MaxHeldBytes int
	AckWait      time.Duration // the consumer's
	MaxDeliver   int           // the consumer's; -1 unlimited
	// PublishTimeout bounds the wait for one PubAck or lookup.
	PublishTimeout time.Duration
	// OutageRetryFor is how long infrastructure failures are retried
	// in-process before the job is naked with a delay (which spends a
	// delivery). On the last delivery they are retried until shutdown.
	OutageRetryFor time.Duration
	// DrainTimeout bounds finishing held jobs at shutdown.
	DrainTimeout time.Duration
	// PendingInterval is how often consumer pending counts are read.
	PendingInterval time.Duration
	// PullWait is how long one pull request waits for messages; 0 means
	// 1 s. Shutdown waits for the last one to expire before naking.
	PullWait time.Duration
	// LegacyClaims is an earlier version's bucket of claims, read until
	// its newest claim expires; default topology.LegacyClaimsBucket.
	LegacyClaims string
	// Bind finds the consumer again after it vanished (deleted, or a fatal
	// pull error); nil looks it up by name.
	Bind func(ctx context.Context) (jetstream.Consumer, error)
	// Bulk is the bulk class's consumer; nil serves interactive jobs only.
	Bulk     jetstream.Consumer
	BindBulk func(ctx context.Context) (jetstream.Consumer, error)
	// BulkShare is the share of capacity bulk jobs are guaranteed while
	// interactive jobs saturate the worker, in (0, 1).
	BulkShare float64
	Logger    *zap.Logger
	Observer  Observer // nil: none
}

func (c Config) withDefaults() Config {
	d := config.Defaults()
	if c.Concurrency <= 0 {
		c.Concurrency = d.WorkerConcurrency
	}
	if c.Prefetch <= 0 {
		c.Prefetch = d.WorkerPrefetch
	}
	if c.MaxHeldBytes <= 0 {
		c.MaxHeldBytes = d.WorkerMaxHeldBytes
	}
	if c.AckWait <= 0 {
		c.AckWait = d.AckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = d.MaxDeliver
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	if c.OutageRetryFor <= 0 {
		c.OutageRetryFor = d.OutageRetryFor
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = d.DrainTimeout
	}
	if c.PendingInterval <= 0 {
		c.PendingInterval = 5 * time.Second
	}
	if c.BulkShare <= 0 || c.BulkShare >= 1 {
		c.BulkShare = d.WorkerBulkShare
	}
	if c.PullWait <= 0 {
		c.PullWait = time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}

type nopObserver struct{}

func (nopObserver) JobDone(Class, string, string, time.Duration)         {}
func (nopObserver) Redelivered(string)                                   {}
func (nopObserver) DeadLettered(string, string)                          {}
func (nopObserver) Duplicate(string, string)                             {}
func (nopObserver) InFlight(int)                                         {}
func (nopObserver) ConsumerPending(Class, uint64, uint64, time.Duration) {}

// Worker is one process's pump.
type Worker struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream // synchronous calls: dead letters, stream lookups
	h   Handler
	log *zap.Logger
	obs Observer

	consMu sync.Mutex
	src    [2]*source // by Class; src[Bulk] nil without a bulk consumer

	io   *slots
	pace *pace

	mu        sync.Mutex
	held      map[*item]struct{}
	heldBytes int
	room      chan struct{} // signalled when something is released
	store     *resultstore.Store
	news      func(*resultstore.Op) // storeNews, bound once: a method value per job would be an allocation

	denied     sync.Map // subject → time.Time of NATS's last refusal
	ready      atomic.Bool
	draining   atomic.Bool
	drainCh    chan struct{}
	ioWG       sync.WaitGroup
	maxPayload int
}

// New returns a Worker consuming from cons with handler h; its results go
// to the stream topology.ResultsStream.
func New(nc *nats.Conn, js jetstream.JetStream, cons jetstream.Consumer, h Handler, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	w := &Worker{cfg: cfg, nc: nc, js: js, h: h, log: cfg.Logger, obs: cfg.Observer,
		io:   newSlots(cfg.Concurrency, cfg.BulkShare),
		held: map[*item]struct{}{}, room: make(chan struct{}, 1), drainCh: make(chan struct{})}
	w.news = w.storeNews
	w.store = resultstore.New(nc, js, resultstore.Config{Timeout: cfg.PublishTimeout, LegacyClaims: cfg.LegacyClaims, Logger: cfg.Logger})
	w.src[Interactive] = newSource(Interactive, cons, cfg.Bind, topology.JobsStream, topology.Consumer, cfg.Prefetch, cfg.Logger)
	w.pace = newPace(cfg.BulkShare, runtime.GOMAXPROCS(0))
	if cfg.Bulk != nil {
		w.src[Bulk] = newSource(Bulk, cfg.Bulk, cfg.BindBulk, topology.BulkStream, topology.BulkConsumer, cfg.Prefetch, cfg.Logger)
	}
	w.maxPayload = int(nc.MaxPayload())
	if w.cfg.MaxHeldBytes < 2*w.maxPayload {
		w.cfg.MaxHeldBytes = 2 * w.maxPayload
	}
	return w, nil
}

// source is one class's consumer and its share of the held budget.
type source struct {
	class        Class
	stream, name string
	bind         func(ctx context.Context) (jetstream.Consumer, error)
	cons         jetstream.Consumer // under Worker.consMu
	// Under Worker.mu.
	held, heldBytes    int
	reserved, resBytes int           // asked for and not yet arrived
	room               chan struct{} // signalled when anything is released
	events             chan *item    // to the pool; never full
	acks               *ackOrder
}

func newSource(c Class, cons jetstream.Consumer, bind func(context.Context) (jetstream.Consumer, error), stream, name string, prefetch int, log *zap.Logger) *source {
	return &source{class: c, cons: cons, bind: bind, stream: stream, name: name,
		room: make(chan struct{}, 1), events: make(chan *item, 2*prefetch+64), acks: newAckOrder(prefetch, log)}
}

func (w *Worker) consumer(src *source) jetstream.Consumer {
	w.consMu.Lock()
	defer w.consMu.Unlock()
	return src.cons
}

// post hands an item to the pool.
func (w *Worker) post(it *item) { w.src[it.class].events <- it }

// Config returns the settings in force, defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// LegacyClaims reports whether an earlier version's claims are still read
// before storing (a Reply then needs its LegacyDigest).
func (w *Worker) LegacyClaims() bool { return w.store.LegacyActive() }

// Inbox is the prefix of the subjects the worker's own requests are
// answered on: no job may name it as its reply subject.
func (w *Worker) Inbox() string { return w.store.Inbox() }

// Denied tells the worker that NATS refused it a publish to subject (a
// permissions violation, reported asynchronously by the connection). The
// job's result is stored all the same; a copy to that reply subject is
// then given up instead of being retried as if NATS were down.
func (w *Worker) Denied(subject string) { w.denied.Store(subject, time.Now()) }

func (w *Worker) isDenied(subject string) bool {
	at, ok := w.denied.Load(subject)
	return ok && time.Since(at.(time.Time)) < 10*time.Minute
}

// Held returns how many messages the worker holds and their bytes.
func (w *Worker) Held() (n, bytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held), w.heldBytes
}

// Ready reports whether the worker is pulling jobs (false before Run binds
// and while draining).
func (w *Worker) Ready() bool { return w.ready.Load() && !w.draining.Load() }

// Draining reports whether shutdown has begun.
func (w *Worker) Draining() bool { return w.draining.Load() }

// op is the step an item is at: in flight, or to be retried.
type op uint8

const (
	opHandle op = iota // run the Handler
	opStore            // store the result (package resultstore)
)

// item is one held message on its way through the pipeline. Exactly one
// party owns it at a time: the pool, an I/O goroutine, a timer, or the
// map of the request in flight (whoever removes it from the map owns it).
type item struct {
	m      jetstream.Msg
	pulled pulledMsg // m, when the puller delivered it: one allocation a job less
	d      Delivery
	rep    Reply
	op     op
	class  Class
	size   int
	ord    uint64 // arrival number in its source's ackOrder
	acked  bool   // its ack went to the ackOrder (which releases it then)
	// again: re-issue op (after a backoff) rather than complete it.
	again     bool
	failures  int
	failSince time.Time
	progress  atomic.Int64 // last sign of life sent to the server, unix ns
	abandoned atomic.Bool  // given up at the drain timeout: ignore events
	st        resultstore.Op
	// Tracing (nil while it is off): the job's span, the context the
	// Handler runs in, and the span of the Reply's publish.
	span trace.Span
	tctx context.Context
	pub  trace.Span
}

// Run consumes until ctx ends, then shuts down: it stops pulling, naks the
// held jobs that were not started so they are redelivered at once, lets the
// others finish within DrainTimeout, then cancels what is left and naks it.
// Run returns only after every goroutine it started has exited (Handler
// calls cut short by the drain timeout get a moment to return).
func (w *Worker) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	storeReady, storeDone := make(chan struct{}), make(chan error, 1)
	go func() { storeDone <- w.store.Run(storeCtx, storeReady) }()
	defer func() { stopStore(); <-storeDone }()
	select {
	case <-storeReady:
	case err := <-storeDone:
		storeDone <- err
		return err
	}
	var advs []*nats.Subscription
	defer func() {
		for _, a := range advs {
			_ = a.Unsubscribe()
		}
	}()
	for _, src := range w.sources() {
		adv, err := w.nc.QueueSubscribe(maxDeliveriesSubject(src.stream, src.name), "hybridscore-dead-letters", w.onMaxDeliveries(jobCtx, src.stream))
		if err != nil {
			return fmt.Errorf("consumer: subscribe to advisories: %w", err)
		}
		advs = append(advs, adv)
	}
	quit := make(chan struct{})
	var pool, bg, pulls sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		pool.Add(1)
		go func() {
			defer pool.Done()
			p := picker{busy: time.Now()}
			defer w.idle(&p)
			for {
				it := w.next(&p, quit)
				if it == nil {
					return
				}
				w.step(jobCtx, it)
				w.stepped(&p)
			}
		}()
	}
	bg.Add(2)
	go func() { defer bg.Done(); w.keepAlive(quit) }()
	go func() { defer bg.Done(); w.pace.measure(quit) }()
	for _, src := range w.sources() {
		bg.Add(1)
		pulls.Add(1)
		go func() { defer bg.Done(); w.watchPending(ctx, src) }()
		go func() { defer pulls.Done(); w.pull(ctx, src) }()
	}
	w.ready.Store(true)
	w.log.Info("consuming", zap.Bool("bulk", w.src[Bulk] != nil), zap.Float64("bulk_share", w.cfg.BulkShare),
		zap.Int("concurrency", w.cfg.Concurrency), zap.Int("prefetch", w.cfg.Prefetch), zap.Int("max_held_bytes", w.cfg.MaxHeldBytes))

	<-ctx.Done()
	w.draining.Store(true)
	w.log.Info("draining", zap.Duration("timeout", w.cfg.DrainTimeout), zap.Int("held", w.heldCount()))
	deadline := time.NewTimer(w.cfg.DrainTimeout)
	defer deadline.Stop()
	for _, a := range advs {
		_ = a.Drain()
	}
	pulls.Wait()
	// Requeue only once the last pull request has no subscriber: the server
	// would hand a naked job straight back to a pull request still open,
	// and it would then wait out its AckWait. Each puller has drained its
	// subscription before its pull returned; the flush makes the server
	// see it first.
	time.Sleep(20 * time.Millisecond)
	_ = w.nc.FlushTimeout(time.Second)
	close(w.drainCh)
	if !w.waitEmpty(deadline.C) {
		w.log.Warn("drain timeout: cancelling the jobs still held; they are naked for redelivery", zap.Int("held", w.heldCount()))
		cancelJobs()
		w.abandonAll()
	}
	close(quit)
	pool.Wait()
	for _, src := range w.sources() {
		src.acks.flush()
	}
	// Handler calls cut short return promptly once cancelled; do not wait
	// on one that does not.
	ioDone := make(chan struct{})
	go func() { w.ioWG.Wait(); close(ioDone) }()
	select {
	case <-ioDone:
	case <-time.After(2 * time.Second):
		w.log.Warn("handler calls still running after cancellation")
	}
	bg.Wait()
	w.ready.Store(false)
	return nil
}

func (w *Worker) heldCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held)
}

// waitEmpty waits until nothing is held (true), or deadline fires or NATS
// stays unreachable for a second (false): then nothing held can finish, and
// the server redelivers it after AckWait.
func (w *Worker) waitEmpty(deadline <-chan time.Time) bool {
	var offline time.Time
	for {
		if w.heldCount() == 0 {
			return true
		}
		switch {
		case w.nc.IsConnected():
			offline = time.Time{}
		case offline.IsZero():
			offline = time.Now()
		case time.Since(offline) > time.Second:
			w.log.Warn("NATS unreachable while draining: giving up the held jobs")
			return false
		}
		select {
		case <-w.room:
		case <-deadline:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// abandonAll naks everything still held and forgets it: late events for
// these items are ignored.
func (w *Worker) abandonAll() {
	w.mu.Lock()
	items := make([]*item, 0, len(w.held))
	for it := range w.held {
		items = append(items, it)
	}
	w.mu.Unlock()
	for _, it := range items {
		if it.abandoned.Swap(true) {
			continue
		}
		w.store.Forget(&it.st)
		w.giveBack(it, "drain timeout")
	}
}

func (w *Worker) sources() []*source {
	if w.src[Bulk] == nil {
		return w.src[:1]
	}
	return w.src[:]
}

// finish releases a held item after its message was acked, naked or
// terminated.
func (w *Worker) finish(it *item, status string) {
	w.mu.Lock()
	if _, ok := w.held[it]; !ok {
		w.mu.Unlock()
		return
	}
	delete(w.held, it)
	w.heldBytes -= it.size
	src := w.src[it.class]
	src.held--
	src.heldBytes -= it.size
	w.mu.Unlock()
	if !it.acked {
		src.acks.release(it.ord)
	}
	w.signal()
	if it.span != nil {
		endJob(it, status)
	}
	w.pace.finished.Add(1)
	w.obs.InFlight(-1)
	w.obs.JobDone(it.class, it.d.Lane, status, time.Since(it.d.Received))
	if it.rep.Release != nil {
		it.rep.Release(it.rep.Result)
	}
	if ce := w.log.Check(zap.DebugLevel, "job done"); ce != nil {
		ce.Write(zap.String("job_id", it.rep.JobID), zap.String("correlation_id", it.rep.CorrelationID), zap.String("lane", it.d.Lane),
			zap.String("status", status), zap.String("fallback_reason", it.rep.FallbackReason), zap.Int("attempt", it.d.Attempt),
			zap.Float64("latency_ms", float64(time.Since(it.d.Received).Microseconds())/1000))
	}
	if status == job.StatusDegraded {
		w.log.Warn("degraded", zap.String("job_id", it.rep.JobID), zap.String("correlation_id", it.rep.CorrelationID), zap.String("lane", it.d.Lane),
			zap.String("status", status), zap.String("fallback_reason", it.rep.FallbackReason))
	}
}

// requeueing reports whether jobs not yet started are to be naked at once.
func (w *Worker) requeueing() bool {
	select {
	case <-w.drainCh:
		return true
	default:
		return false
	}
}

// step advances an item by one event on the pool.
func (w *Worker) step(ctx context.Context, it *item) {
	if it.abandoned.Load() {
		return
	}
	again := it.again
	it.again = false
	switch it.op {
	case opHandle:
		if w.requeueing() {
			w.giveBack(it, "shutdown before start")
			return
		}
		it.d.MayBlock = false
		hctx := ctx
		if tracing.Enabled() {
			hctx = w.startJob(ctx, it)
		}
		rep := w.h.Handle(hctx, &it.d)
		if rep.Disposition == NeedsIO {
			w.ioWG.Add(1)
			go w.blocking(ctx, it)
			return
		}
		w.dispose(ctx, it, rep)
	case opStore:
		if again {
			w.store.Retry(&it.st)
			return
		}
		if res, done := w.store.Advance(&it.st); done {
			w.stored(ctx, it, res)
		}
	}
}

// blocking runs a Handler that must wait, holding one of Concurrency slots
// (not a pool goroutine) while it does.
func (w *Worker) blocking(ctx context.Context, it *item) {
	defer w.ioWG.Done()
	if it.class == Bulk && !w.pace.startBulk(w.drainCh) || !w.io.acquire(it.class, w.drainCh) {
		// Shutting down before it started: another worker takes it now.
		w.giveBack(it, "shutdown before start")
		return
	}
	it.d.MayBlock = true
	if it.tctx != nil {
		ctx = it.tctx
	}
	rep := w.h.Handle(ctx, &it.d)
	w.io.release()
	if it.abandoned.Load() {
		return
	}
	if rep.Disposition == NeedsIO { // a Handler may not ask twice
		rep = Reply{Disposition: Fail, Reason: ReasonInternal, Message: "handler asked to block twice"}
	}
	w.dispose(ctx, it, rep)
}

// dispose carries out a Handler's Reply.
func (w *Worker) dispose(ctx context.Context, it *item, rep Reply) {
	it.rep = rep
	switch rep.Disposition {
	case Publish:
		if it.span != nil {
			w.startPublish(it)
		}
		w.store.Start(w.storeOp(ctx, it), w.news)
	case Retry:
		if ce := w.log.Check(zap.DebugLevel, "retry later"); ce != nil {
			ce.Write(zap.String("job_id", rep.JobID), zap.String("lane", it.d.Lane), zap.String("fallback_reason", rep.FallbackReason),
				zap.Int("attempt", it.d.Attempt), zap.Duration("delay", rep.Delay))
		}
		w.nak(it, rep.Delay, "retry")
		w.finish(it, StatusRetried)
	case Requeue:
		w.giveBack(it, rep.Message)
	case Reject:
		w.ioWG.Add(1)
		go func() { defer w.ioWG.Done(); w.reject(ctx, it) }()
	case Fail:
		w.log.Error("internal error", zap.String("job_id", rep.JobID), zap.String("lane", it.d.Lane), zap.Int("attempt", it.d.Attempt),
			zap.String("error", rep.Message), zap.Bool("last_delivery", it.d.Last))
		if it.d.Last {
			w.ioWG.Add(1)
			// it.rep, not rep: a closure over rep would move every
			// Reply to the heap, the published ones included.
			go func() { defer w.ioWG.Done(); w.deadLetterAndTerm(ctx, it, ReasonInternal, it.rep.Message) }()
			return
		}
		w.nak(it, backoff(it.d.Attempt, time.Second, time.Minute), rep.Message)
		w.finish(it, StatusNaked)
	default:
		it.rep = Reply{Disposition: Fail, Reason: ReasonInternal, Message: "handler gave no disposition"}
		w.dispose(ctx, it, it.rep)
	}
}

// infra handles a failure of the infrastructure at it.op: retried
// in-process with exponential backoff and jitter while the message is kept
// alive; after OutageRetryFor (never on the last delivery) naked with a
// delay.
func (w *Worker) infra(it *item, what string, err error) {
	now := time.Now()
	if it.failures == 0 {
		it.failSince = now
		w.log.Warn(what+" failed; retrying", zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane), zap.Int("attempt", it.d.Attempt), zap.Error(err))
	}
	it.failures++
	if !it.d.Last && now.Sub(it.failSince) >= w.cfg.OutageRetryFor {
		w.log.Warn(what+" still failing; redelivering later", zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane),
			zap.Int("failures", it.failures), zap.Error(err))
		w.nak(it, backoff(it.d.Attempt, 5*time.Second, time.Minute), what+" failed: "+err.Error())
		w.finish(it, StatusNaked)
		return
	}
	if w.draining.Load() && now.Sub(it.failSince) >= w.cfg.DrainTimeout/2 {
		w.giveBack(it, what+" failed while draining")
		return
	}
	it.again = true
	time.AfterFunc(backoff(it.failures, 100*time.Millisecond, 5*time.Second), func() { w.post(it) })
}

// jobFailure handles a failure that a retry cannot mend (the result is
// larger than its stream accepts): naked with backoff, spending deliveries,
// and dead-lettered on the last one.
func (w *Worker) jobFailure(ctx context.Context, it *item, why string) {
	w.log.Warn("result not published", zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane),
		zap.String("subject", it.rep.Subject), zap.Int("attempt", it.d.Attempt), zap.String("error", why))
	if it.d.Last {
		w.ioWG.Add(1)
		go func() { defer w.ioWG.Done(); w.deadLetterAndTerm(ctx, it, ReasonMaxDeliveries, why) }()
		return
	}
	w.nak(it, backoff(it.d.Attempt, time.Second, time.Minute), why)
	w.finish(it, StatusNaked)
}

// backoff is base·2^(n-1), at most ceiling, with jitter in its upper half.
func backoff(n int, base, ceiling time.Duration) time.Duration {
	d := min(base<<min(max(n-1, 0), 20), ceiling)
	return d/2 + rand.N(d/2+1)
}

// ack acks its message in arrival order (see ackOrder); an error is
// logged when the ack is sent.
func (w *Worker) ack(it *item) {
	it.acked = true
	w.src[it.class].acks.ack(it.ord, it.m)
}

// nak hands the job back (a failure is logged: the job then returns
// after AckWait).
func (w *Worker) nak(it *item, delay time.Duration, why string) {
	var err error
	if delay > 0 {
		err = it.m.NakWithDelay(delay)
	} else {
		err = it.m.Nak()
	}
	if err != nil {
		w.log.Warn("nak failed; the job returns after AckWait", zap.String("job_id", it.rep.JobID), zap.String("why", why), zap.Error(err))
	}
}

// keepAlive sends in-progress acks for every held message before its
// AckWait runs out.
func (w *Worker) keepAlive(quit <-chan struct{}) {
	every := max(w.cfg.AckWait/3, 50*time.Millisecond)
	t := time.NewTicker(max(min(every/2, time.Second), 25*time.Millisecond))
	defer t.Stop()
	var due []*item
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		now := time.Now()
		due = due[:0]
		w.mu.Lock()
		for it := range w.held {
			if now.UnixNano()-it.progress.Load() >= int64(every) {
				due = append(due, it)
			}
		}
		w.mu.Unlock()
		for _, it := range due {
			it.progress.Store(now.UnixNano())
			_ = it.m.InProgress()
		}
	}
}

// Prefixes of the Nats-Msg-Id of copies of a job made by the system: a
// replay of a dead letter and a requeue.
const (
	ReplayIDPrefix  = "replay-"
	RequeueIDPrefix = "requeue-"
)

// CarriedJobID is the job id a copy of a job carries over from the job it
// copies (HeaderJobID), or "". It is believed only on a message whose
// Nats-Msg-Id has the prefix of such a copy (a replay's or a requeue's),
// and only when it is a valid job id: an ordinary producer's header naming
// another job is ignored, so its unreadable job is not answered in that
// job's place. (A producer that forges both can still do what its
// Nats-Msg-Id alone always allowed: NATS permissions, not headers, keep
// producers apart.)
func CarriedJobID(h nats.Header) string {
	id, msgID := h.Get(HeaderJobID), h.Get(jetstream.MsgIDHeader)
	if !strings.HasPrefix(msgID, ReplayIDPrefix) && !strings.HasPrefix(msgID, RequeueIDPrefix) || !job.ValidJobID(id) {
		return ""
	}
	return id
}
