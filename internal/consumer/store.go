package consumer

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/resultstore"
	"github.com/hybridscore/hybridscore/internal/tracing"
)

// storeOp prepares the item's store: the result, its job and where the
// requester waits.
func (w *Worker) storeOp(ctx context.Context, it *item) *resultstore.Op {
	it.op = opStore
	it.st = resultstore.Op{Tag: it, Request: resultstore.Request{Lane: it.d.Lane, JobID: it.rep.JobID, Digest: it.rep.Digest,
		LegacyDigest: it.rep.LegacyDigest, Reply: it.rep.Subject, Result: it.rep.Result}}
	if it.pub != nil {
		// A consumer of results continues the job's trace from here.
		it.st.Header = nats.Header{}
		tracing.Inject(trace.ContextWithSpan(it.tctx, it.pub), it.st.Header)
	}
	return &it.st
}

// storeNews hands an item whose store has news back to the pool (on a NATS
// goroutine).
func (w *Worker) storeNews(op *resultstore.Op) { w.post(op.Tag.(*item)) }

// stored carries out the end of a store.
func (w *Worker) stored(ctx context.Context, it *item, res resultstore.Result) {
	if it.pub != nil {
		event(it.pub, res)
	}
	switch res.Outcome {
	case resultstore.Stored, resultstore.Repeated:
		if it.rep.Release != nil {
			// The result is stored; its buffer is free again.
			it.rep.Release(it.rep.Result)
			it.rep.Release, it.rep.Result, it.st.Result = nil, nil, nil
		}
		status := it.rep.Status
		if res.Outcome == resultstore.Repeated {
			status = w.repeated(it, res)
			w.log.Info("duplicate job: answered before; the stored answer was sent again", zap.String("job_id", it.rep.JobID),
				zap.String("lane", it.d.Lane), zap.Int("attempt", it.d.Attempt), zap.String("reply_subject", it.rep.Subject), zap.String("source", repeatSource(res)))
		}
		w.ack(it)
		w.finish(it, status)
	case resultstore.Conflict:
		w.conflict(ctx, it)
	case resultstore.Unstorable:
		if res.Stage == resultstore.StageCopy {
			// The result is stored on the job's own subject; only the
			// stream that stores the reply subject refuses the copy
			// (its max message size), and would refuse every attempt.
			w.log.Warn("the reply subject's stream refused the copy (too large for it); the result is stored on the job's subject only",
				zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane), zap.String("subject", it.rep.Subject), zap.Error(res.Err))
			w.ack(it)
			w.finish(it, w.statusOf(it, res))
			return
		}
		w.jobFailure(ctx, it, "result not storable: "+res.Err.Error())
	default:
		if res.Stage == resultstore.StageCopy && w.isDenied(it.rep.Subject) {
			// Not an outage: this worker may never publish there. The
			// result is stored on the job's own subject all the same.
			w.log.Warn("reply subject refused by NATS permissions; the result is stored on the job's subject only",
				zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane), zap.String("subject", it.rep.Subject))
			w.ack(it)
			w.finish(it, w.statusOf(it, res))
			return
		}
		w.infra(it, res.Stage, res.Err)
	}
}

// repeated counts a job answered before (its stored answer sent again, or
// refused where it was sent) and returns its status.
func (w *Worker) repeated(it *item, res resultstore.Result) string {
	w.obs.Duplicate(it.d.Lane, repeatSource(res))
	return StatusDuplicate
}

// repeatSource says where a repeat's earlier answer was found: its stored
// record, or an earlier version's claim.
func repeatSource(res resultstore.Result) string {
	if res.Legacy {
		return "claim"
	}
	return "record"
}

// statusOf is the status of a job whose copy was refused: a duplicate when
// the copy was of a stored answer.
func (w *Worker) statusOf(it *item, res resultstore.Result) string {
	if res.Repeat {
		return w.repeated(it, res)
	}
	return it.rep.Status
}

func (w *Worker) conflict(ctx context.Context, it *item) {
	msg := "job_id " + it.rep.JobID + " was answered before for different content"
	w.log.Warn("job_id conflict", zap.String("job_id", it.rep.JobID), zap.String("lane", it.d.Lane))
	w.ioWG.Add(1)
	go func() { defer w.ioWG.Done(); w.deadLetterAndTerm(ctx, it, ReasonConflict, msg) }()
}
