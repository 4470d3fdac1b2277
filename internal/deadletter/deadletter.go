// Package deadletter reads and replays the dead letters of stream
// SCORING_DLQ: one definition of what selecting and replaying a dead letter
// means, for `publisher dlq` and `publisher console` alike.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// Filter selects dead letters; an empty list selects every value.
type Filter struct {
	Reason []string
	Lane   []string
	JobID  []string
}

// Empty reports whether f selects every dead letter.
func (f Filter) Empty() bool { return len(f.Reason)+len(f.Lane)+len(f.JobID) == 0 }

// Match reports whether the dead letter with headers h is selected.
func (f Filter) Match(h nats.Header) bool {
	return f.MatchFields(h.Get(consumer.HeaderReason), Lane(h), h.Get(consumer.HeaderJobID))
}

// MatchFields reports whether a dead letter of this reason, lane and job id
// is selected.
func (f Filter) MatchFields(reason, lane, jobID string) bool {
	return (len(f.Reason) == 0 || slices.Contains(f.Reason, reason)) &&
		(len(f.Lane) == 0 || slices.Contains(f.Lane, lane)) &&
		(len(f.JobID) == 0 || slices.Contains(f.JobID, jobID))
}

// Lane is the lane of the job a dead letter holds.
func Lane(h nats.Header) string { return topology.Lane(h.Get(consumer.HeaderSubject)) }

// Each calls fn for every dead letter f selects, oldest first, reading the
// stream by sequence up to its last message when called.
//
// Each request has RequestTimeout: NATS refuses a user that may not read
// the stream without answering (the refusal reaches the connection's error
// handler only), so without a bound of its own a refused read would wait
// out ctx.
func Each(ctx context.Context, js jetstream.JetStream, f Filter, fn func(*jetstream.RawStreamMsg) error) error {
	rctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	s, err := js.Stream(rctx, topology.DLQStream)
	cancel()
	if err != nil {
		return fmt.Errorf("stream %s: %w", topology.DLQStream, unanswered(ctx, err))
	}
	st := s.CachedInfo().State
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		rctx, cancel := context.WithTimeout(ctx, RequestTimeout)
		m, err := s.GetMsg(rctx, seq)
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, unanswered(ctx, err))
		}
		if f.Match(m.Header) {
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// RequestTimeout bounds each JetStream API request of Each.
var RequestTimeout = 10 * time.Second

// unanswered says what a read of SCORING_DLQ that timed out on its own
// bound (ctx itself still running) most likely met.
func unanswered(ctx context.Context, err error) error {
	return unansweredFor(ctx, err, topology.DLQStream, "read it", "")
}

// unansweredFor says what a request to what that timed out on its own
// bound most likely met: NATS refuses a request its user may not make
// (to do) without answering it.
func unansweredFor(ctx context.Context, err error, what, do, hint string) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%s did not answer within %s (may this NATS user %s?%s): %w", what, RequestTimeout, do, hint, err)
	}
	return err
}

// Target is the job subject dead letter m is replayed to; an error when its
// recorded subject is not a job subject.
func Target(m *jetstream.RawStreamMsg) (string, error) {
	subject := m.Header.Get(consumer.HeaderSubject)
	if !strings.HasPrefix(subject, topology.JobsPrefix) && !strings.HasPrefix(subject, topology.BulkPrefix) {
		return "", fmt.Errorf("dead letter %d: its subject %q is not a job subject", m.Sequence, subject)
	}
	return subject, nil
}

// Replay publishes dead letter m's payload, unchanged, to the subject it
// came from. It gets a new Nats-Msg-Id (replay-<SCORING_DLQ's creation
// time, base 36>-<dead letter sequence>) so
// the jobs stream's duplicate window does not drop it, and arrives as a new
// message: a fresh delivery budget, the same job_id. Its Hybridscore-Job-Id
// header carries the dead letter's job id, by which the worker names a job
// whose payload it cannot read (it would otherwise take the replay's
// Nats-Msg-Id). With del, the dead letter is deleted from dlq (stream
// SCORING_DLQ) once the job is published again.
//
// Replaying one dead letter twice within the duplicate window publishes
// it once: the second time the server drops the copy, and Replay reports
// published false (and still deletes the letter with del, since its job was
// published by the first replay).
func Replay(ctx context.Context, js jetstream.JetStream, dlq jetstream.Stream, m *jetstream.RawStreamMsg, del bool) (published bool, err error) {
	subject, err := Target(m)
	if err != nil {
		return false, err
	}
	// The id names SCORING_DLQ by its creation time, as a dead letter's
	// own id names its job stream: a re-created SCORING_DLQ numbers its
	// letters from 1 again, and its letter 5 is not the old letter 5.
	h := nats.Header{jetstream.MsgIDHeader: []string{consumer.ReplayIDPrefix + strconv.FormatInt(dlq.CachedInfo().Created.UnixNano(), 36) +
		"-" + strconv.FormatUint(m.Sequence, 10)}}
	if id := m.Header.Get(consumer.HeaderJobID); id != "" {
		h.Set(consumer.HeaderJobID, id)
	}
	rctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	ack, err := js.PublishMsg(rctx, &nats.Msg{Subject: subject, Data: m.Data, Header: h})
	if err != nil {
		return false, fmt.Errorf("replay dead letter %d: %w", m.Sequence, unansweredFor(ctx, err, "the jobs stream", "publish jobs", ""))
	}
	if del {
		// A user that may not delete letters (compose's producer) is
		// refused without an answer: said after RequestTimeout.
		dctx, cancel := context.WithTimeout(ctx, RequestTimeout)
		defer cancel()
		if err := dlq.DeleteMsg(dctx, m.Sequence); err != nil {
			return !ack.Duplicate, fmt.Errorf("delete dead letter %d (its job was published again): %w", m.Sequence, unansweredFor(ctx, err, topology.DLQStream, "delete dead letters", " In the compose stack only the operator may"))
		}
	}
	return !ack.Duplicate, nil
}
