package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/resultstore"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// reject dead-letters an invalid job, answers it and terminates it, so it
// is never redelivered.
func (w *Worker) reject(ctx context.Context, it *item) {
	if !w.retrying(ctx, it, "dead letter", func(ctx context.Context) error { return w.deadLetter(ctx, it, it.rep.Reason, it.rep.Message) }) {
		return
	}
	if !w.retrying(ctx, it, "rejection", func(ctx context.Context) error {
		err := w.store.Reject(ctx, w.rejection(ctx, it))
		if err != nil && resultstore.TooLarge(err) {
			// Already dead-lettered: answering is what is left, and it
			// cannot be done.
			w.log.Warn("rejection not storable", zap.String("job_id", it.rep.JobID), zap.Error(err))
			return nil
		}
		return err
	}) {
		return
	}
	if err := it.m.TermWithReason(it.rep.Reason); err != nil {
		w.log.Warn("term failed", zap.String("job_id", it.rep.JobID), zap.Error(err))
	}
	w.finish(it, it.rep.Status)
	w.log.Warn("rejected", zap.String("job_id", it.rep.JobID), zap.String("correlation_id", it.rep.CorrelationID), zap.String("lane", it.d.Lane),
		zap.String("status", it.rep.Status), zap.String("code", it.rep.Reason), zap.String("reason", it.rep.Message))
}

// deadLetterAndTerm moves a job to the dead letters with reason and
// terminates it.
func (w *Worker) deadLetterAndTerm(ctx context.Context, it *item, reason, message string) {
	if !w.retrying(ctx, it, "dead letter", func(ctx context.Context) error { return w.deadLetter(ctx, it, reason, message) }) {
		return
	}
	if err := it.m.TermWithReason(reason); err != nil {
		w.log.Warn("term failed", zap.String("job_id", it.rep.JobID), zap.Error(err))
	}
	w.finish(it, StatusDeadLettered)
	w.log.Warn("dead-lettered", zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane), zap.String("reason", reason),
		zap.String("message", message), zap.Int("attempt", it.d.Attempt))
}

// retrying runs fn until it succeeds (true), with the backoff of
// infrastructure failures. When it gives up the job is naked (false).
func (w *Worker) retrying(ctx context.Context, it *item, what string, fn func(context.Context) error) bool {
	since := time.Now()
	for n := 1; ; n++ {
		fctx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
		err := fn(fctx)
		cancel()
		if err == nil {
			return true
		}
		if n == 1 {
			w.log.Warn(what+" failed; retrying", zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane), zap.Error(err))
		}
		if it.abandoned.Load() {
			return false
		}
		if (!it.d.Last && time.Since(since) >= w.cfg.OutageRetryFor) || ctx.Err() != nil {
			w.nak(it, backoff(it.d.Attempt, 5*time.Second, time.Minute), what+" failed: "+err.Error())
			w.finish(it, StatusNaked)
			return false
		}
		sleep(ctx, backoff(n, 100*time.Millisecond, 5*time.Second))
	}
}

// rejection is a rejected job's answer for the store.
func (w *Worker) rejection(ctx context.Context, it *item) resultstore.Request {
	r := resultstore.Request{Lane: it.d.Lane, JobID: it.rep.JobID, Reply: it.rep.Subject, Result: it.rep.Result}
	if it.span != nil {
		r.Header = nats.Header{}
		tracing.Inject(trace.ContextWithSpan(ctx, it.span), r.Header)
	}
	return r
}

// deadLetter stores the job's payload unchanged in SCORING_DLQ,
// deduplicated by the job's stream sequence so a repeat is stored once.
func (w *Worker) deadLetter(ctx context.Context, it *item, reason, message string) error {
	id := it.rep.JobID
	if id == "" {
		if id = CarriedJobID(it.d.Header); id == "" {
			if id = job.JobIDOfMsgID(it.d.Lane, it.d.Header.Get(jetstream.MsgIDHeader)); id == "" {
				id = it.d.Header.Get(jetstream.MsgIDHeader)
			}
		}
	}
	return w.storeDeadLetter(ctx, deadLetter{stream: w.src[it.class].stream, subject: it.d.Subject, payload: it.d.Data,
		seq: it.d.Seq, attempt: it.d.Attempt, reason: reason, message: message, jobID: id, digest: it.rep.Digest})
}

// deadLetter is one job on its way to SCORING_DLQ.
type deadLetter struct {
	stream, subject string // where the job was
	payload         []byte
	seq             uint64 // its sequence in stream
	attempt         int
	reason, message string
	jobID           string
	digest          string // of the job's content, when it could be read
}

// storeDeadLetter stores the job's payload unchanged under
// scoring.dlq.<lane>. Its Nats-Msg-Id names the job's stream by creation
// time and the job by sequence, so a repeat within the window is stored
// once, while a job of a recreated stream (whose sequences start again)
// is never mistaken for an earlier one.
func (w *Worker) storeDeadLetter(ctx context.Context, dl deadLetter) error {
	var created int64
	if s, err := w.js.Stream(ctx, dl.stream); err == nil {
		created = s.CachedInfo().Created.UnixNano()
	} else {
		return fmt.Errorf("stream %s: %w", dl.stream, err)
	}
	seq := strconv.FormatUint(dl.seq, 10)
	lane := topology.Lane(dl.subject)
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, "dlq-"+dl.stream+"-"+strconv.FormatInt(created, 36)+"-"+seq)
	h.Set(HeaderReason, dl.reason)
	h.Set(HeaderError, headerSafe(dl.message))
	h.Set(HeaderJobID, dl.jobID)
	h.Set(HeaderSubject, dl.subject)
	h.Set(HeaderStreamSeq, seq)
	h.Set(HeaderDelivery, strconv.Itoa(dl.attempt))
	h.Set(HeaderPayloadHash, strconv.FormatUint(xxhash.Sum64(dl.payload), 16))
	if dl.digest != "" {
		// Whose letter it is: a producer waiting for a job with this id
		// tells its own content's letter from another's.
		h.Set(HeaderDigest, dl.digest)
	}
	if _, err := w.js.PublishMsg(ctx, &nats.Msg{Subject: topology.DLQPrefix + lane, Data: dl.payload, Header: h}); err != nil {
		return err
	}
	w.obs.DeadLettered(lane, dl.reason)
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

func maxDeliveriesSubject(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// onMaxDeliveries moves a job that exhausted MaxDeliver without being
// finished (its worker died, or its AckWait ran out) to the dead-letter
// stream and removes it from the work queue. One worker of the queue group
// handles each advisory; the dead letter's Nats-Msg-Id makes a repeat
// harmless.
func (w *Worker) onMaxDeliveries(ctx context.Context, jobs string) nats.MsgHandler {
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
		stream, err := w.js.Stream(actx, jobs)
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
		// A requeued copy's Nats-Msg-Id is the requeue's; the job's id is
		// the one it carries.
		id := CarriedJobID(raw.Header)
		if id == "" {
			if id = job.JobIDOfMsgID(lane, raw.Header.Get(jetstream.MsgIDHeader)); id == "" {
				id = raw.Header.Get(jetstream.MsgIDHeader)
			}
		}
		if requeues(raw.Header) < MaxRequeues {
			// Not finished because its worker died or stalled on the last
			// delivery (a worker that fails a job dead-letters it itself):
			// not the job's fault. It gets a fresh budget.
			if err := w.requeue(actx, jobs, raw.Subject, raw.Data, raw.Header, adv.StreamSeq); err != nil {
				w.log.Warn("requeue exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
				return
			}
			if err := stream.DeleteMsg(actx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				w.log.Warn("delete requeued job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
			}
			w.log.Warn("job not finished by its last delivery (a worker died or stalled): published again with a fresh delivery budget",
				zap.String("job_id", id), zap.String("lane", lane), zap.Uint64("seq", adv.StreamSeq), zap.Int("requeues", requeues(raw.Header)+1))
			return
		}
		// The content's digest, as on a letter of a decoded job: a producer
		// tells its own job's letter, and a corrected job, by it. Limits
		// do not matter here: nothing is scored.
		var digest string
		if j, _, err := job.Decode(raw.Data, job.Limits{MaxTextBytes: math.MaxInt32, MaxJobBytes: math.MaxInt32}); err == nil {
			digest = job.Digest(j)
		}
		if err := w.storeDeadLetter(actx, deadLetter{stream: jobs, subject: raw.Subject, payload: raw.Data, seq: adv.StreamSeq,
			attempt: adv.Deliveries, reason: ReasonMaxDeliveries, message: fmt.Sprintf("not finished after %d deliveries, %d times over", adv.Deliveries, MaxRequeues+1),
			jobID: id, digest: digest}); err != nil {
			w.log.Warn("dead-letter exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
			return
		}
		if err := stream.DeleteMsg(actx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			w.log.Warn("delete exhausted job", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
		}
		w.log.Warn("dead-lettered after max deliveries", zap.String("job_id", id), zap.String("lane", lane), zap.Uint64("seq", adv.StreamSeq))
	}
}
