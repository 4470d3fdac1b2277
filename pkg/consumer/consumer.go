// Package consumer runs the JetStream consumer pool: it pulls jobs from the
// shared durable consumer, scores them, publishes each result and only then
// acknowledges the job. It is the one place that acks, naks and terminates
// messages, and the one place that maps outcomes to those actions:
//
//   - scored or degraded: publish the result (PubAck awaited when the reply
//     subject is stream-backed), then Ack;
//   - degraded with on_fallback "retry" before the last allowed delivery:
//     NakWithDelay with exponential backoff;
//   - invalid job: rejected result, a copy in the dead-letter stream, Term;
//   - deadline passed: expired result, then Ack;
//   - result not published, or shutdown mid-job: NakWithDelay; never lost;
//   - MaxDeliver exhausted: the server's advisory moves the job to the
//     dead-letter stream.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/scoring"
	"github.com/hybridscore/hybridscore/pkg/topology"
)

// Scorer scores one request (scoring.Service).
type Scorer interface {
	Score(ctx context.Context, req *scoring.Request) (scoring.Outcome, error)
}

// Observer receives the worker's events (metrics). Implementations must be
// safe for concurrent use.
type Observer interface {
	JobDone(lane, status string, d time.Duration)
	Redelivered(lane string)
	DeadLettered(lane, reason string)
	InFlight(delta int)
	ConsumerPending(pending, ackPending uint64)
}

// Job outcome labels beyond the result statuses.
const (
	StatusRetried = "retried" // redelivered later under on_fallback retry
	StatusNaked   = "naked"   // not finished (publish failed, shutdown): redelivered
)

// Dead-letter headers. The payload of a dead letter is the job unchanged.
const (
	HeaderReason    = "Hybridscore-Reason"
	HeaderError     = "Hybridscore-Error"
	HeaderJobID     = "Hybridscore-Job-Id"
	HeaderSubject   = "Hybridscore-Subject"
	HeaderStreamSeq = "Hybridscore-Stream-Seq"
	HeaderDelivery  = "Hybridscore-Delivery"
	// ReasonMaxDeliveries is the dead-letter reason of exhausted jobs.
	ReasonMaxDeliveries = "max_deliveries"
)

// Config configures a Worker. Zero values take the defaults noted.
type Config struct {
	Concurrency int // jobs in flight; 0 means 64
	// Prefetch bounds jobs buffered ahead of the pool; 0 means Concurrency.
	// Buffered jobs age toward AckWait without in-progress acks, so it is
	// kept near what the pool finishes well within AckWait.
	Prefetch   int
	AckWait    time.Duration // the consumer's; 0 means 30 s
	MaxDeliver int           // the consumer's; 0 means 5; -1 unlimited
	// RetryBackoff is the first on_fallback retry delay, doubled per
	// delivery up to 1 min; 0 means 1 s.
	RetryBackoff time.Duration
	// PublishTimeout bounds the wait for a result's PubAck; 0 means 5 s.
	PublishTimeout time.Duration
	// DrainTimeout bounds finishing in-flight jobs at shutdown; 0 means 25 s.
	DrainTimeout time.Duration
	// PendingInterval is how often consumer pending counts are read; 0
	// means 5 s.
	PendingInterval time.Duration
	// Bind finds the consumer again after it vanished (deleted, or a fatal
	// pull error); nil looks it up by name.
	Bind     func(ctx context.Context) (jetstream.Consumer, error)
	WorkerID string
	Limits   job.Limits
	Logger   *zap.Logger
	Observer Observer // nil: none
}

func (c Config) defaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Prefetch <= 0 {
		c.Prefetch = c.Concurrency
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 25 * time.Second
	}
	if c.PendingInterval <= 0 {
		c.PendingInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	c.Limits = c.Limits.Defaults()
	return c
}

// Job outcome label of a job dead-lettered on its last delivery.
const StatusDeadLettered = "dead_lettered"

type nopObserver struct{}

func (nopObserver) JobDone(string, string, time.Duration) {}
func (nopObserver) Redelivered(string)                    {}
func (nopObserver) DeadLettered(string, string)           {}
func (nopObserver) InFlight(int)                          {}
func (nopObserver) ConsumerPending(uint64, uint64)        {}

// Worker is one process's consumer pool.
type Worker struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	consMu sync.Mutex
	cons   jetstream.Consumer
	scorer Scorer
	log    *zap.Logger
	obs    Observer

	subjects     sync.Map // reply subject → subjectInfo
	subjectCount atomic.Int64
	bufs         sync.Pool
	ready        atomic.Bool
	draining     atomic.Bool
}

// New returns a Worker consuming from cons.
func New(nc *nats.Conn, js jetstream.JetStream, cons jetstream.Consumer, scorer Scorer, cfg Config) *Worker {
	cfg = cfg.defaults()
	return &Worker{
		cfg: cfg, nc: nc, js: js, cons: cons, scorer: scorer, log: cfg.Logger, obs: cfg.Observer,
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }},
	}
}

type subjectInfo struct {
	core bool // no stream covers it: publish without JetStream
	at   time.Time
}

func (w *Worker) consumer() jetstream.Consumer {
	w.consMu.Lock()
	defer w.consMu.Unlock()
	return w.cons
}

// Ready reports whether the worker is pulling jobs (false before Run binds
// and while draining).
func (w *Worker) Ready() bool { return w.ready.Load() && !w.draining.Load() }

// Draining reports whether shutdown has begun.
func (w *Worker) Draining() bool { return w.draining.Load() }

// Run consumes until ctx ends, then drains: it stops pulling, lets the
// buffered and in-flight jobs finish within DrainTimeout, naks what is left
// so it is redelivered at once elsewhere, and returns. Run returns only after
// every goroutine it started has exited.
func (w *Worker) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	// jobs is never closed: a late consume callback may still be sending.
	// quit ends the pool once no callback can deliver any more; abandon
	// releases callbacks blocked on a send when the consumer cannot drain.
	jobs := make(chan jetstream.Msg)
	quit, abandon := make(chan struct{}), make(chan struct{})
	var pool sync.WaitGroup
	for range w.cfg.Concurrency {
		pool.Add(1)
		go func() {
			defer pool.Done()
			k := newKeeper(w.cfg.AckWait / 3)
			defer k.close()
			for {
				select {
				case m := <-jobs:
					w.obs.InFlight(1)
					w.process(jobCtx, m, k)
					w.obs.InFlight(-1)
				case <-quit:
					return
				}
			}
		}()
	}
	stopPool := func() { close(quit); pool.Wait() }
	consume := func(cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
		return cons.Consume(func(m jetstream.Msg) { w.handoff(m, jobs, abandon) },
			jetstream.PullMaxMessages(w.cfg.Prefetch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				w.log.Warn("consume", zap.Error(err))
			}))
	}
	cc, err := consume(w.consumer())
	if err != nil {
		stopPool()
		return fmt.Errorf("consumer: consume: %w", err)
	}
	adv, err := w.nc.QueueSubscribe(maxDeliveriesSubject, "hybridscore-dead-letters", w.onMaxDeliveries(jobCtx))
	if err != nil {
		cc.Stop()
		close(abandon)
		stopPool()
		return fmt.Errorf("consumer: subscribe to advisories: %w", err)
	}
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); w.watchPending(ctx) }()
	w.ready.Store(true)
	w.log.Info("consuming", zap.String("stream", topology.JobsStream), zap.String("consumer", topology.Consumer),
		zap.Int("concurrency", w.cfg.Concurrency), zap.Int("prefetch", w.cfg.Prefetch))

	// A consume context ends by itself when the consumer is deleted or a
	// pull fails for good: then the worker is not ready and binds again.
	for cc != nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-cc.Closed():
			w.ready.Store(false)
			w.log.Error("consumer stopped delivering; binding again")
			cc = w.rebind(ctx, consume)
			w.ready.Store(cc != nil)
		}
	}
	w.draining.Store(true)
	w.log.Info("draining", zap.Duration("timeout", w.cfg.DrainTimeout))
	deadline := time.NewTimer(w.cfg.DrainTimeout)
	defer deadline.Stop()
	_ = adv.Drain()
	if cc == nil { // shut down while binding again: nothing to drain
		cc = closedConsume{}
	}
	cc.Drain()
	// Draining needs the server; while disconnected there is nothing to
	// drain (unacked jobs return to the stream after AckWait), so stop.
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	drained, expired := false, false
	for !drained {
		select {
		case <-cc.Closed():
			drained = true
			continue
		case <-poll.C:
			if w.nc.IsConnected() {
				continue
			}
			w.log.Warn("NATS unreachable while draining: stopping the consumer")
		case <-deadline.C:
			expired = true
			w.log.Warn("drain timeout: stopping the consumer")
		}
		cc.Stop()
		close(abandon)
		break
	}
	finished := make(chan struct{})
	go func() { stopPool(); close(finished) }()
	if expired {
		cancelJobs()
	}
	select {
	case <-finished:
	case <-deadline.C:
		w.log.Warn("drain timeout: abandoning in-flight jobs; they are naked for redelivery")
		cancelJobs()
		<-finished
	}
	bg.Wait()
	w.ready.Store(false)
	return nil
}

type closedConsume struct{}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (closedConsume) Stop()                   {}
func (closedConsume) Drain()                  {}
func (closedConsume) Closed() <-chan struct{} { return closedCh }

// rebind binds the consumer again, with backoff, until it can consume or
// ctx ends (then nil).
func (w *Worker) rebind(ctx context.Context, consume func(jetstream.Consumer) (jetstream.ConsumeContext, error)) jetstream.ConsumeContext {
	bind := w.cfg.Bind
	if bind == nil {
		bind = func(ctx context.Context) (jetstream.Consumer, error) {
			return w.js.Consumer(ctx, topology.JobsStream, topology.Consumer)
		}
	}
	delay := 250 * time.Millisecond
	for {
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := bind(bctx)
		cancel()
		if err == nil {
			var cc jetstream.ConsumeContext
			if cc, err = consume(cons); err == nil {
				w.consMu.Lock()
				w.cons = cons
				w.consMu.Unlock()
				w.log.Info("consumer bound again")
				return cc
			}
		}
		w.log.Warn("bind consumer", zap.Error(err), zap.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// handoff gives a delivered job to a free pool goroutine. When every one is
// busy the job waits here, kept alive with in-progress acks so that it is
// not redelivered before it even starts.
func (w *Worker) handoff(m jetstream.Msg, jobs chan<- jetstream.Msg, abandon <-chan struct{}) {
	select {
	case jobs <- m:
		return
	default:
	}
	t := time.NewTicker(max(w.cfg.AckWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case jobs <- m:
			return
		case <-abandon: // left unacked: redelivered after AckWait
			return
		case <-t.C:
			_ = m.InProgress()
		}
	}
}

func (w *Worker) watchPending(ctx context.Context) {
	t := time.NewTicker(w.cfg.PendingInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := w.consumer().Info(ictx); err == nil {
			w.obs.ConsumerPending(info.NumPending, uint64(info.NumAckPending))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keeper sends in-progress acks for the job its pool goroutine is on, so a
// job waiting on langextract outlives AckWait without being redelivered.
// One per pool goroutine, reused across jobs: no allocation per job.
type keeper struct {
	every time.Duration
	mu    sync.Mutex
	m     jetstream.Msg
	t     *time.Timer
}

func newKeeper(every time.Duration) *keeper {
	k := &keeper{every: max(every, 100*time.Millisecond)}
	k.t = time.AfterFunc(time.Hour, k.fire)
	k.t.Stop()
	return k
}

func (k *keeper) fire() {
	k.mu.Lock()
	m := k.m
	if m != nil {
		k.t.Reset(k.every)
	}
	k.mu.Unlock()
	if m != nil {
		_ = m.InProgress()
	}
}

func (k *keeper) start(m jetstream.Msg) {
	k.mu.Lock()
	k.m = m
	k.t.Reset(k.every)
	k.mu.Unlock()
}

func (k *keeper) stop() {
	k.mu.Lock()
	k.m = nil
	k.t.Stop()
	k.mu.Unlock()
}

func (k *keeper) close() { k.stop() }

// delivery is one delivery of a job message.
type delivery struct {
	m       jetstream.Msg
	lane    string
	attempt int
	seq     uint64
	start   time.Time
}

// last reports whether the server will not deliver this job again.
func (w *Worker) last(d *delivery) bool { return w.cfg.MaxDeliver > 0 && d.attempt >= w.cfg.MaxDeliver }

// process handles one delivery to its end: acked, naked or terminated.
func (w *Worker) process(ctx context.Context, m jetstream.Msg, k *keeper) {
	d := delivery{m: m, lane: topology.Lane(m.Subject()), attempt: 1, start: time.Now()}
	if md, err := m.Metadata(); err == nil {
		d.attempt, d.seq = int(md.NumDelivered), md.Sequence.Stream
	}
	if d.attempt > 1 {
		w.obs.Redelivered(d.lane)
	}
	j, partial, err := job.Decode(m.Data(), w.cfg.Limits)
	if err != nil {
		w.reject(ctx, &d, partial, err)
		return
	}
	subject := j.ReplySubject
	if subject == "" {
		subject = topology.ResultsPrefix + d.lane
	}
	r := job.Result{SchemaVersion: 1, JobID: j.JobID, CorrelationID: j.CorrelationID, WorkerID: w.cfg.WorkerID, DeliveryAttempt: d.attempt}
	vector := j.VectorSimilarity
	if !j.Deadline.IsZero() && !d.start.Before(j.Deadline) {
		r.Status = job.StatusExpired
		r.VectorScore = &vector
		r.Error = &job.ErrorInfo{Code: job.CodeDeadlineExceeded, Message: "deadline " + j.Deadline.UTC().Format(time.RFC3339Nano) + " passed before the job was picked up"}
		w.publishThenAck(ctx, &d, subject, &r)
		return
	}
	req := scoring.Request{Task: j.TaskDescription, Pattern: j.HistoricalPatternText, Vector: j.VectorSimilarity,
		Characteristics: j.Characteristics, Language: j.Language, Context: j.Context}
	k.start(m)
	defer k.stop()
	sctx := ctx
	if !j.Deadline.IsZero() {
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(ctx, j.Deadline)
		defer cancel()
	}
	o, err := w.scorer.Score(sctx, &req)
	if err != nil { // unreachable for decoded jobs; answer rather than loop
		w.reject(ctx, &d, partial, &job.Error{Code: job.CodeInvalidField, Message: err.Error()})
		return
	}
	if o.Status == scoring.Degraded {
		if ctx.Err() != nil { // shutting down: let another worker score it properly
			w.nak(&d, 0, "shutdown during scoring")
			return
		}
		if j.OnFallback == job.FallbackRetry && !w.last(&d) {
			delay := w.retryDelay(d.attempt)
			if j.Deadline.IsZero() || time.Now().Add(delay).Before(j.Deadline) {
				_ = m.NakWithDelay(delay)
				w.obs.JobDone(d.lane, StatusRetried, time.Since(d.start))
				w.log.Debug("retry later", zap.String("job_id", j.JobID), zap.String("lane", d.lane),
					zap.String("fallback_reason", o.FallbackReason), zap.Int("attempt", d.attempt), zap.Duration("delay", delay))
				return
			}
		}
	}
	fill(&r, &o, &vector)
	w.publishThenAck(ctx, &d, subject, &r)
}

func (w *Worker) retryDelay(attempt int) time.Duration {
	d := w.cfg.RetryBackoff << min(attempt-1, 16)
	return min(d, time.Minute)
}

// fill copies an outcome into a result. The pointers refer to o's fields,
// so o must outlive the encoding of r.
func fill(r *job.Result, o *scoring.Outcome, vector *float64) {
	r.VectorScore = vector
	r.HybridScore = &o.Hybrid
	r.VectorWeight, r.PatternWeight = &o.Weights.Vector, &o.Weights.Pattern
	r.Cache = &job.CacheInfo{Task: o.CacheTask.String(), Pattern: o.CachePattern.String()}
	if o.Status == scoring.Scored {
		r.Status = job.StatusScored
		r.PatternScore, r.Confidence, r.ScoreAgreement = &o.Pattern, &o.Confidence, &o.Agreement
		r.WeightsAdjusted = o.Weights.Adjusted
		if o.Weights.Reason != "" {
			r.AdjustmentReason = &o.Weights.Reason
		}
		c := o.Components
		r.ComponentScores = &job.Components{Concept: c[0], Theme: c[1], Domain: c[2], Structure: c[3], Relationship: c[4]}
		r.UsedPatterns = true
		return
	}
	r.Status = job.StatusDegraded
	r.FallbackReason = &o.FallbackReason
}

// publishThenAck publishes r and acks the job once the result is safely
// stored; on failure the job is tried again (or dead-lettered on its last
// delivery).
func (w *Worker) publishThenAck(ctx context.Context, d *delivery, subject string, r *job.Result) {
	r.LatencyMS = float64(time.Since(d.start).Microseconds()) / 1000
	r.ScoredAt = job.Timestamp(time.Now())
	bp := w.bufs.Get().(*[]byte)
	*bp = r.AppendJSON((*bp)[:0])
	settled, err := w.publish(ctx, subject, r.JobID, *bp)
	if settled {
		// An unsettled publish may still be resent by the client from this
		// buffer: only a settled one gives it back.
		w.bufs.Put(bp)
	}
	if err != nil {
		w.log.Warn("result not published", zap.String("job_id", r.JobID), zap.String("lane", d.lane),
			zap.String("subject", subject), zap.Int("attempt", d.attempt), zap.Error(err))
		w.retryOrDeadLetter(ctx, d, r.JobID, "result not published: "+err.Error())
		return
	}
	if err := d.m.Ack(); err != nil {
		// The result is stored; a redelivery will be deduplicated by its
		// Nats-Msg-Id.
		w.log.Warn("ack failed after publish", zap.String("job_id", r.JobID), zap.Error(err))
	}
	w.obs.JobDone(d.lane, r.Status, time.Since(d.start))
	if ce := w.log.Check(zap.DebugLevel, "job done"); ce != nil {
		fr := ""
		if r.FallbackReason != nil {
			fr = *r.FallbackReason
		}
		ce.Write(zap.String("job_id", r.JobID), zap.String("correlation_id", r.CorrelationID), zap.String("lane", d.lane),
			zap.String("status", r.Status), zap.String("fallback_reason", fr), zap.Float64("latency_ms", r.LatencyMS),
			zap.Int("attempt", r.DeliveryAttempt))
	}
	if r.Status == job.StatusDegraded {
		w.log.Warn("degraded", zap.String("job_id", r.JobID), zap.String("correlation_id", r.CorrelationID), zap.String("lane", d.lane),
			zap.String("status", r.Status), zap.String("fallback_reason", *r.FallbackReason), zap.Float64("latency_ms", r.LatencyMS))
	}
}

// retryOrDeadLetter naks a job that could not be finished, except on its
// last delivery: the server would not deliver it again, so it goes to the
// dead-letter stream now (the MAX_DELIVERIES advisory, which nobody may be
// listening to, stays the backstop for jobs whose AckWait ran out).
func (w *Worker) retryOrDeadLetter(ctx context.Context, d *delivery, id, why string) {
	if w.last(d) {
		if err := w.deadLetter(ctx, d.lane, d.m.Subject(), d.m.Data(), d.seq, d.attempt, ReasonMaxDeliveries, why, id); err == nil {
			if err := d.m.TermWithReason(ReasonMaxDeliveries); err != nil {
				w.log.Warn("term failed", zap.String("job_id", id), zap.Error(err))
			}
			w.obs.JobDone(d.lane, StatusDeadLettered, time.Since(d.start))
			w.log.Warn("dead-lettered on its last delivery", zap.String("job_id", id), zap.String("lane", d.lane), zap.String("reason", why))
			return
		}
	}
	w.nak(d, time.Second, why)
}

func (w *Worker) nak(d *delivery, delay time.Duration, why string) {
	var err error
	if delay > 0 {
		err = d.m.NakWithDelay(delay)
	} else {
		err = d.m.Nak()
	}
	if err != nil {
		w.log.Warn("nak failed; the job returns after AckWait", zap.String("why", why), zap.Error(err))
	}
	w.obs.JobDone(d.lane, StatusNaked, time.Since(d.start))
}

// publish stores a result: through JetStream, waiting for the PubAck, when a
// stream covers the subject; as a plain core publish when none does (e.g. an
// _INBOX reply). settled is false when it gave up before the server answered:
// the client may still resend data then.
func (w *Worker) publish(ctx context.Context, subject, msgID string, data []byte) (settled bool, err error) {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}}
	core, err := w.coreOnly(ctx, subject)
	if err != nil {
		return true, err
	}
	if core {
		return true, w.nc.PublishMsg(msg)
	}
	fut, err := w.js.PublishMsgAsync(msg, jetstream.WithStallWait(w.cfg.PublishTimeout))
	if err != nil {
		return true, err
	}
	t := time.NewTimer(w.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case <-fut.Ok():
		return true, nil
	case err := <-fut.Err():
		// "No responders" here means the stream is not answering (a
		// restart, an election): a failure, never a reason to publish
		// without storing.
		return true, err
	case <-t.C:
		return false, fmt.Errorf("no PubAck within %s", w.cfg.PublishTimeout)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// coreOnly reports whether no stream covers subject. Results under
// scoring.results. are stream-backed by contract; other reply subjects are
// looked up once a minute (at most 10000 remembered).
func (w *Worker) coreOnly(ctx context.Context, subject string) (bool, error) {
	switch {
	case strings.HasPrefix(subject, "_INBOX."):
		return true, nil
	case strings.HasPrefix(subject, topology.ResultsPrefix):
		return false, nil
	}
	if v, ok := w.subjects.Load(subject); ok && time.Since(v.(subjectInfo).at) < time.Minute {
		return v.(subjectInfo).core, nil
	}
	lctx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
	defer cancel()
	_, err := w.js.StreamNameBySubject(lctx, subject)
	core := errors.Is(err, jetstream.ErrStreamNotFound)
	if err != nil && !core {
		return false, fmt.Errorf("which stream stores %s: %w", subject, err)
	}
	if w.subjectCount.Add(1) > 10000 {
		w.subjects.Clear()
		w.subjectCount.Store(0)
	}
	w.subjects.Store(subject, subjectInfo{core: core, at: time.Now()})
	return core, nil
}

// reject answers an invalid job, copies it to the dead-letter stream and
// terminates it.
func (w *Worker) reject(ctx context.Context, d *delivery, p job.Partial, err error) {
	var je *job.Error
	if !errors.As(err, &je) {
		je = &job.Error{Code: job.CodeInvalidJSON, Message: err.Error()}
	}
	id := p.JobID
	subject := p.ReplySubject
	if id == "" {
		subject = ""
		if id = d.m.Headers().Get(jetstream.MsgIDHeader); !job.ValidJobID(id) {
			id = "seq-" + strconv.FormatUint(d.seq, 10)
		}
	}
	if subject == "" {
		subject = topology.ResultsPrefix + d.lane
	}
	if err := w.deadLetter(ctx, d.lane, d.m.Subject(), d.m.Data(), d.seq, d.attempt, je.Code, je.Message, id); err != nil {
		w.log.Warn("dead letter not stored; job will be redelivered", zap.String("job_id", id), zap.Error(err))
		w.nak(d, time.Second, "dead letter failed")
		return
	}
	r := job.Result{SchemaVersion: 1, JobID: id, CorrelationID: p.CorrelationID, Status: job.StatusRejected,
		Error: &job.ErrorInfo{Code: je.Code, Message: je.Message}, WorkerID: w.cfg.WorkerID, DeliveryAttempt: d.attempt}
	r.LatencyMS = float64(time.Since(d.start).Microseconds()) / 1000
	r.ScoredAt = job.Timestamp(time.Now())
	if _, err := w.publish(ctx, subject, id, r.AppendJSON(nil)); err != nil {
		// Already dead-lettered: answering is what is left. Not on the last
		// delivery, try again; on it, the dead letter stands.
		w.log.Warn("rejection not published", zap.String("job_id", id), zap.Error(err))
		if !w.last(d) {
			w.nak(d, time.Second, "result publish failed")
			return
		}
	}
	if err := d.m.TermWithReason(je.Code); err != nil {
		w.log.Warn("term failed", zap.String("job_id", id), zap.Error(err))
	}
	w.obs.JobDone(d.lane, job.StatusRejected, time.Since(d.start))
	w.log.Warn("rejected", zap.String("job_id", id), zap.String("correlation_id", p.CorrelationID), zap.String("lane", d.lane),
		zap.String("status", job.StatusRejected), zap.String("code", je.Code), zap.String("reason", je.Message))
}

// deadLetter stores payload unchanged in SCORING_DLQ, deduplicated by the
// job's stream sequence so a redelivered rejection is stored once.
func (w *Worker) deadLetter(ctx context.Context, lane, subject string, payload []byte, seq uint64, attempt int, reason, message, id string) error {
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, "dlq-"+strconv.FormatUint(seq, 10))
	h.Set(HeaderReason, reason)
	h.Set(HeaderError, headerSafe(message))
	h.Set(HeaderJobID, id)
	h.Set(HeaderSubject, subject)
	h.Set(HeaderStreamSeq, strconv.FormatUint(seq, 10))
	h.Set(HeaderDelivery, strconv.Itoa(attempt))
	pctx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
	defer cancel()
	if _, err := w.js.PublishMsg(pctx, &nats.Msg{Subject: topology.DLQPrefix + lane, Data: payload, Header: h}); err != nil {
		return err
	}
	w.obs.DeadLettered(lane, reason)
	return nil
}

func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}

var maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + topology.JobsStream + "." + topology.Consumer

// onMaxDeliveries moves a job that exhausted MaxDeliver to the dead-letter
// stream and removes it from the work queue. One worker of the queue group
// handles each advisory; the dead letter's Nats-Msg-Id makes a repeat
// harmless.
func (w *Worker) onMaxDeliveries(ctx context.Context) nats.MsgHandler {
	return func(msg *nats.Msg) {
		var adv struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries int    `json:"deliveries"`
		}
		if err := json.Unmarshal(msg.Data, &adv); err != nil || adv.StreamSeq == 0 {
			w.log.Warn("unreadable max-deliveries advisory", zap.ByteString("advisory", msg.Data))
			return
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := w.js.Stream(actx, topology.JobsStream)
		if err != nil {
			w.log.Warn("dead-letter exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
			return
		}
		raw, err := stream.GetMsg(actx, adv.StreamSeq)
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) {
				w.log.Warn("dead-letter exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
			}
			return
		}
		lane := topology.Lane(raw.Subject)
		id := raw.Header.Get(jetstream.MsgIDHeader)
		if err := w.deadLetter(actx, lane, raw.Subject, raw.Data, adv.StreamSeq, adv.Deliveries, ReasonMaxDeliveries,
			fmt.Sprintf("not finished after %d deliveries", adv.Deliveries), id); err != nil {
			w.log.Warn("dead-letter exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
			return
		}
		if err := stream.DeleteMsg(actx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			w.log.Warn("delete exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
		}
		w.log.Warn("dead-lettered after max deliveries", zap.String("job_id", id), zap.String("lane", lane), zap.Uint64("seq", adv.StreamSeq))
	}
}
