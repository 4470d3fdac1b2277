package consumer

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// HeaderRequeues counts the times a job was given back with a fresh
// delivery budget: its worker shut down, failed to reach NATS's results, or
// died on the job's last delivery. A delivery the worker gives back is not
// the job's fault, so it must not use up the job's deliveries.
const HeaderRequeues = "Hybridscore-Requeues"

// MaxRequeues bounds the fresh budgets a job gets: one that takes its
// worker down every time is dead-lettered as max_deliveries after that
// many.
const MaxRequeues = 3

// giveBack returns a job the worker will not finish (shutdown, drain
// timeout) to the queue. A nak does that while the job has deliveries left;
// on its last delivery a nak would end it (the server delivers it no more
// and announces it exhausted), so the job is published again as a fresh
// message instead, and the delivery acked.
func (w *Worker) giveBack(it *item, why string) {
	if !it.d.Last {
		w.nak(it, 0, why)
		w.finish(it, StatusNaked)
		return
	}
	w.ioWG.Add(1)
	go func() {
		defer w.ioWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PublishTimeout)
		defer cancel()
		err := w.requeue(ctx, w.src[it.class].stream, it.d.Subject, it.d.Data, it.d.Header, it.d.Seq)
		if err != nil {
			w.log.Warn("give back on the last delivery: publishing the job again failed; naked", zap.String("job_id", it.rep.JobID),
				zap.String("lane", it.d.Lane), zap.Error(err))
			w.nak(it, 0, why)
			w.finish(it, StatusNaked)
			return
		}
		w.log.Info("given back on its last delivery: published again with a fresh delivery budget", zap.String("job_id", it.rep.JobID),
			zap.String("lane", it.d.Lane), zap.String("why", why))
		w.ack(it)
		w.finish(it, StatusNaked)
	}()
}

// requeue publishes a job of stream again, unchanged but for its
// HeaderRequeues and a Nats-Msg-Id of its own: stable for this message
// (its stream's creation time and sequence), so a retried publish is
// stored once, and never the job's own id, which the duplicate window
// would drop. The job's result, if it was stored meanwhile, makes the copy
// a repeat, never a second result.
func (w *Worker) requeue(ctx context.Context, stream, subject string, data []byte, hdr nats.Header, seq uint64) error {
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	h := make(nats.Header, len(hdr)+1)
	for k, v := range hdr {
		h[k] = v
	}
	n, _ := strconv.Atoi(hdr.Get(HeaderRequeues))
	h.Set(HeaderRequeues, strconv.Itoa(n+1))
	// The copy's Nats-Msg-Id is its own: a job whose payload cannot be
	// read keeps its producer's id (or the one a replay carried) by this
	// header.
	if id := CarriedJobID(hdr); id != "" {
		h.Set(HeaderJobID, id)
	} else if id := job.JobIDOfMsgID(topology.Lane(subject), hdr.Get(jetstream.MsgIDHeader)); id != "" {
		h.Set(HeaderJobID, id)
	} else {
		h.Del(HeaderJobID)
	}
	h.Set(jetstream.MsgIDHeader, RequeueIDPrefix+stream+"-"+strconv.FormatInt(s.CachedInfo().Created.UnixNano(), 36)+"-"+strconv.FormatUint(seq, 10))
	_, err = w.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: h})
	return err
}

// requeues is how many fresh budgets a job message has had.
func requeues(h nats.Header) int {
	n, _ := strconv.Atoi(h.Get(HeaderRequeues))
	return n
}
