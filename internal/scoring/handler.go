package scoring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Scorer scores one request (Service).
type Scorer interface {
	// Score may wait on langextract and Redis.
	Score(ctx context.Context, req *Request) (Outcome, error)
	// ScoreCached never waits: ok is false when Score is needed. It is
	// the hot path, so req is passed by value: a pointer through an
	// interface would move every job's request to the heap.
	ScoreCached(req Request) (o Outcome, ok bool, err error)
}

// JobHandler is the consumer.Handler of scoring jobs: it decodes and validates a job,
// scores it and encodes its result.
type JobHandler struct {
	Scorer   Scorer
	WorkerID string
	Limits   job.Limits
	// RetryBackoff is the first on_fallback retry delay, doubled per
	// delivery up to a minute.
	RetryBackoff time.Duration
	// LegacyClaims reports whether an earlier version's claims are still
	// read (consumer.Worker.LegacyClaims): only then is the digest that
	// version computed needed.
	LegacyClaims func() bool
	// ReservedReplies are subject prefixes a reply subject may not start
	// with beyond ReservedReplyPrefixes (the worker's own inbox).
	ReservedReplies []string
}

// ReservedReplyPrefixes are the subjects a job's reply subject may not
// address: the streams and APIs the worker consumes or manages. A result
// sent there would be taken for a job, a dead letter or an API call.
var ReservedReplyPrefixes = []string{topology.JobsPrefix, topology.BulkPrefix, topology.DLQPrefix, "$JS.", "$KV.", "$SRV.", "$SYS.", "$O."}

// reservedReply says why a reply subject may not be used, or "".
func (h *JobHandler) reservedReply(lane, jobID, subject string) string {
	for _, p := range ReservedReplyPrefixes {
		if strings.HasPrefix(subject, p) {
			return "reply_subject " + subject + " addresses the worker's own streams or APIs (" + p + ")"
		}
	}
	for _, p := range h.ReservedReplies {
		if strings.HasPrefix(subject, p) {
			return "reply_subject " + subject + " addresses the worker's own inbox"
		}
	}
	// results.<lane>.<token> is where some job's result is stored:
	// a copy there would take that job's place.
	if rest, ok := strings.CutPrefix(subject, topology.ResultsPrefix); ok && strings.Count(rest, ".") == 1 && subject != job.ResultSubject(lane, jobID) {
		return "reply_subject " + subject + " is where another job's result is stored (results.<lane>.<job>); use a subject of another depth"
	}
	return ""
}

// resultBuf is a result encoding's buffer, recycled once the pump is
// done with it (resultBufs). Its release is bound once, when it is made,
// so handing it to the pump allocates nothing.
type resultBuf struct {
	b       []byte
	release func([]byte)
}

var resultBufs sync.Pool

func init() {
	resultBufs.New = func() any {
		rb := &resultBuf{b: make([]byte, 0, 1024)}
		rb.release = func(b []byte) {
			rb.b = b[:0]
			resultBufs.Put(rb)
		}
		return rb
	}
}

// Handle implements consumer.Handler. A panic anywhere in it is a consumer.Fail with reason
// internal, never the job's fault.
func (h *JobHandler) Handle(ctx context.Context, d *consumer.Delivery) (rep consumer.Reply) {
	var id string
	defer func() {
		if r := recover(); r != nil {
			rep = consumer.Reply{Disposition: consumer.Fail, JobID: id, Reason: consumer.ReasonInternal, Message: fmt.Sprintf("panic: %v", r)}
		}
	}()
	// Traced, the job span is in ctx (tracing.Enabled is checked first:
	// with tracing off this costs one atomic load).
	traced := tracing.Enabled() && trace.SpanFromContext(ctx).IsRecording()
	var t0 time.Time
	if traced {
		t0 = time.Now()
	}
	j, partial, err := job.Decode(d.Data, h.Limits)
	if traced {
		decoded(ctx, t0, len(d.Data), err)
	}
	if err != nil {
		return h.reject(d, partial, err)
	}
	id = j.JobID
	if why := h.reservedReply(d.Lane, j.JobID, j.ReplySubject); why != "" {
		return h.reject(d, job.Partial{JobID: j.JobID, CorrelationID: j.CorrelationID}, &job.Error{Code: job.CodeInvalidField, Message: why})
	}
	rep = consumer.Reply{JobID: j.JobID, Digest: job.Digest(j), Subject: j.ReplySubject, CorrelationID: j.CorrelationID}
	if h.LegacyClaims != nil && h.LegacyClaims() {
		rep.LegacyDigest = legacyDigest(j)
	}
	r := job.Result{SchemaVersion: 1, JobID: j.JobID, CorrelationID: j.CorrelationID, WorkerID: h.WorkerID, DeliveryAttempt: d.Attempt}
	vector := j.VectorSimilarity
	if !j.Deadline.IsZero() && !d.Received.Before(j.Deadline) {
		r.Status = job.StatusExpired
		r.VectorScore = &vector
		r.Error = &job.ErrorInfo{Code: job.CodeDeadlineExceeded, Message: "deadline " + j.Deadline.UTC().Format(time.RFC3339Nano) + " passed before the job was picked up"}
		rep.Status = job.StatusExpired
		return h.publish(d, &r, rep)
	}
	req := Request{Task: j.TaskDescription, Pattern: j.HistoricalPatternText, Vector: j.VectorSimilarity,
		Characteristics: j.Characteristics, Language: j.Language, Context: j.Context}
	var o Outcome
	if !d.MayBlock {
		var ok bool
		if traced {
			t0 = time.Now()
		}
		if o, ok, err = h.Scorer.ScoreCached(req); !ok {
			return consumer.Reply{Disposition: consumer.NeedsIO}
		}
		if traced && err == nil {
			// Scored from memory, where the engine has no context: its
			// similarity span is recorded here, after the fact.
			scoredCached(ctx, t0, &o)
		}
	} else {
		sctx := ctx
		if !j.Deadline.IsZero() {
			var cancel context.CancelFunc
			sctx, cancel = context.WithDeadline(ctx, j.Deadline)
			defer cancel()
		}
		// A copy: the one passed through the interface goes to the heap,
		// and only on this path.
		blocking := req
		o, err = h.Scorer.Score(sctx, &blocking)
	}
	switch {
	case errors.Is(err, ErrInvalidInput): // decoded jobs never get here; answer rather than loop
		return h.reject(d, partial, &job.Error{Code: job.CodeInvalidField, Message: err.Error()})
	case err != nil:
		return consumer.Reply{Disposition: consumer.Fail, JobID: j.JobID, Reason: consumer.ReasonInternal, Message: err.Error()}
	}
	if o.Status == Degraded {
		if ctx.Err() != nil { // shutting down: let another worker score it properly
			return consumer.Reply{Disposition: consumer.Requeue, JobID: j.JobID, Message: "shutdown during scoring"}
		}
		if j.OnFallback == job.FallbackRetry && !d.Last {
			delay := min(h.RetryBackoff<<min(d.Attempt-1, 16), time.Minute)
			if j.Deadline.IsZero() || time.Now().Add(delay).Before(j.Deadline) {
				return consumer.Reply{Disposition: consumer.Retry, JobID: j.JobID, Delay: delay, Status: consumer.StatusRetried,
					CorrelationID: j.CorrelationID, FallbackReason: o.FallbackReason}
			}
		}
	}
	var cache job.CacheInfo
	var components job.Components
	r = fill(r, &o, &vector, &cache, &components)
	// Not r.Status: whatever is read from r into rep would take all r
	// points to (o, vector, cache, components) to the heap.
	rep.Status = resultStatus(o.Status)
	if o.Status != Scored {
		rep.FallbackReason = o.FallbackReason
	}
	return h.publish(d, &r, rep)
}

// publish encodes r. rep.Status is the caller's: reading anything of r
// into rep would let the compiler move what r points to onto the heap.
func (h *JobHandler) publish(d *consumer.Delivery, r *job.Result, rep consumer.Reply) consumer.Reply {
	now := time.Now()
	r.LatencyMS = float64(now.Sub(d.Received).Microseconds()) / 1000
	r.ScoredAt = job.Timestamp(now)
	rb := resultBufs.Get().(*resultBuf)
	rep.Disposition = consumer.Publish
	rep.Result, rep.Release = r.AppendJSON(rb.b[:0]), rb.release
	return rep
}

// reject answers an invalid job: by its own id and reply subject when they
// could be read, else by the job id a replay or requeue carried over
// (consumer.CarriedJobID), else by the message's Nats-Msg-Id (or stream
// sequence), on the job's subject of the lane's results.
func (h *JobHandler) reject(d *consumer.Delivery, p job.Partial, err error) consumer.Reply {
	var je *job.Error
	if !errors.As(err, &je) {
		je = &job.Error{Code: job.CodeInvalidJSON, Message: err.Error()}
	}
	// A reply subject that could be read is answered even when the job id
	// could not: the requester learns why its job was refused.
	id, subject := p.JobID, p.ReplySubject
	if id == "" {
		if id = consumer.CarriedJobID(d.Header); id == "" {
			if id = job.JobIDOfMsgID(d.Lane, d.Header.Get(jetstream.MsgIDHeader)); id == "" {
				id = "seq-" + strconv.FormatUint(d.Seq, 10)
			}
		}
	}
	if subject != "" && h.reservedReply(d.Lane, id, subject) != "" {
		subject = ""
	}
	r := job.Result{SchemaVersion: 1, JobID: id, CorrelationID: p.CorrelationID, Status: job.StatusRejected,
		Error: &job.ErrorInfo{Code: je.Code, Message: je.Message}, WorkerID: h.WorkerID, DeliveryAttempt: d.Attempt}
	now := time.Now()
	r.LatencyMS = float64(now.Sub(d.Received).Microseconds()) / 1000
	r.ScoredAt = job.Timestamp(now)
	return consumer.Reply{Disposition: consumer.Reject, JobID: id, Subject: subject, Result: r.AppendJSON(nil), Status: job.StatusRejected,
		Reason: je.Code, Message: je.Message, CorrelationID: p.CorrelationID}
}

// legacyDigest is the digest versions before Digest wrote into their
// claims (fields joined with NUL, 64 bits): compared with those claims
// only, never with a result of this version.
func legacyDigest(j *job.Job) string {
	d := xxhash.New()
	for _, s := range []string{j.TaskDescription, j.HistoricalPatternText, j.Language, j.Context, j.ReplySubject} {
		_, _ = d.WriteString(s)
		_, _ = d.Write([]byte{0})
	}
	var b [8]byte
	v := math.Float64bits(j.VectorSimilarity)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	_, _ = d.Write(b[:])
	if c := j.Characteristics; c != nil {
		for _, s := range []string{c.Complexity, c.FeatureLabel, c.TaskType} {
			_, _ = d.Write([]byte{1})
			_, _ = d.WriteString(s)
		}
	}
	return strconv.FormatUint(d.Sum64(), 16)
}

// tidy rounds v to twelve decimals.
func tidy(v float64) float64 { return math.Round(v*1e12) / 1e12 }

// fill copies an outcome into a result, using cache and components for
// its objects. The pointers refer to o's fields and to those, so they must
// outlive the encoding of r; taken and returned by value, r lets them all
// live on the caller's stack.
func fill(r job.Result, o *Outcome, vector *float64, cache *job.CacheInfo, components *job.Components) job.Result {
	if o.Status == Scored {
		// Arithmetic leaves float64 noise in the last digits
		// (0.7837500000000001 for 0.78375); twelve decimals keep every
		// figure exact to far better than the 1e-9 it is checked to, and
		// print as people write them.
		for _, v := range []*float64{&o.Hybrid, &o.Pattern, &o.Confidence, &o.Agreement, &o.Weights.Vector, &o.Weights.Pattern,
			&o.Components[0], &o.Components[1], &o.Components[2], &o.Components[3], &o.Components[4]} {
			*v = tidy(*v)
		}
	}
	r.VectorScore = vector
	r.HybridScore = &o.Hybrid
	r.VectorWeight, r.PatternWeight = &o.Weights.Vector, &o.Weights.Pattern
	*cache = job.CacheInfo{Task: o.CacheTask.String(), Pattern: o.CachePattern.String()}
	r.Cache = cache
	r.Status = resultStatus(o.Status)
	if o.Status == Scored {
		r.PatternScore, r.Confidence, r.ScoreAgreement = &o.Pattern, &o.Confidence, &o.Agreement
		r.WeightsAdjusted = o.Weights.Adjusted
		if o.Weights.Reason != "" {
			r.AdjustmentReason = &o.Weights.Reason
		}
		c := o.Components
		*components = job.Components{Concept: c[0], Theme: c[1], Domain: c[2], Structure: c[3], Relationship: c[4]}
		r.ComponentScores = components
		r.UsedPatterns = true
		return r
	}
	r.FallbackReason = &o.FallbackReason
	return r
}

// resultStatus is the result's status of an outcome.
func resultStatus(s Status) string {
	if s == Scored {
		return job.StatusScored
	}
	return job.StatusDegraded
}

// decoded records the decode span, which began at start.
func decoded(ctx context.Context, start time.Time, size int, err error) {
	_, span := tracing.Tracer().Start(ctx, tracing.SpanDecode, trace.WithTimestamp(start),
		trace.WithAttributes(semconv.MessagingMessageBodySize(size)))
	if err != nil {
		var je *job.Error
		if errors.As(err, &je) {
			span.SetAttributes(tracing.AttrErrorCode.String(je.Code))
		}
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// scoredCached records the similarity span of a job scored from memory,
// which began at start.
func scoredCached(ctx context.Context, start time.Time, o *Outcome) {
	_, span := tracing.Tracer().Start(ctx, tracing.SpanSimilarity, trace.WithTimestamp(start),
		trace.WithAttributes(tracing.AttrCache.String(semcache.Memory.String())))
	if o.Status == Scored {
		span.SetAttributes(tracing.AttrPatternScore.Float64(o.Pattern), tracing.AttrHybridScore.Float64(o.Hybrid))
	}
	span.End()
}
