package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Submit publishes one job and waits for its answer.
//
// The answer is taken only from what a worker stored: a job without a
// reply subject of its own gets a fresh inbox as one, and a worker sends
// the result there once it is stored, or, for a job answered before
// (resubmitted at any delay), the stored answer again, marked as a repeat.
// A job the jobs stream drops as a duplicate (a copy is inside its window)
// is answered from its stored result, read through JetStream as soon as it
// is stored. Submit never listens on the job's result subject itself: a
// worker's store that the server refused is published there too.
//
// An answer for other content, or a dead letter job_id_conflict for the
// job, is ErrConflict; a dead letter of another reason with no answer
// within 2 s (a rejected job is both answered and dead-lettered) is
// ErrDeadLettered. A user that may not read SCORING_DLQ waits for its
// timeout instead.
func (c *Client) Submit(ctx context.Context, lane string, w job.Wire, timeout time.Duration) (json.RawMessage, error) {
	if err := checkLane(lane); err != nil {
		return nil, err
	}
	if w.JobID == "" {
		w.JobID = DeriveJobID(w)
	}
	if w.ReplySubject == "" {
		w.ReplySubject = c.NC.NewInbox()
	}
	ctx, span := tracer().Start(ctx, tracing.SpanSubmit, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.AttrJobID.String(w.JobID), tracing.AttrLane.String(lane)))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s := &submission{id: w.JobID, digest: digestOf(&w), done: make(chan struct{}), rejected: make(chan struct{})}
	// A reply subject that is no subject (white space, an empty token, a
	// wildcard) cannot be listened on, and the worker rejects the job: its
	// rejection is read where it is stored, as for any reply subject the
	// worker refuses.
	if job.ValidSubject(w.ReplySubject) {
		sub, err := c.NC.Subscribe(w.ReplySubject, func(m *nats.Msg) { s.answer(m.Data, m.Header.Get(headerDigest), false) })
		if err != nil {
			return nil, err
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	if err := c.NC.FlushWithContext(ctx); err != nil {
		return nil, err
	}
	// Letters from a moment before the publish on: the watch starts
	// beside it, and a clock a little apart from the server's loses none
	// (a second: a shorter duplicate window could let an earlier copy's
	// letter in).
	defer c.watchLetters(ctx, lane, s, time.Now().Add(-time.Second))()
	dup, err := c.Publish(ctx, lane, w)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	if dup {
		defer c.readStored(ctx, lane, s)()
	}
	select {
	case <-s.rejected:
		// This job's rejection was dead-lettered: its answer is on the
		// reply subject, unless the worker refused that subject (the
		// rejection's reason), and always stored.
		if !dup {
			defer c.readStored(ctx, lane, s)()
		}
	case <-s.done:
	case <-ctx.Done():
	}
	select {
	case <-s.done:
		if s.err != nil {
			span.SetStatus(codes.Error, s.err.Error())
			return nil, s.err
		}
		if span.IsRecording() {
			var v struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(s.data, &v)
			span.SetAttributes(tracing.AttrStatus.String(v.Status))
		}
		return s.data, nil
	case <-ctx.Done():
		span.SetStatus(codes.Error, ErrNoResult.Error())
		if err := s.lettersUnread(); err != nil {
			return nil, fmt.Errorf("%w (job %s; %s could not be read, so a job_id reused for other content or a dead letter shows only as this timeout: %w)",
				ErrNoResult, w.JobID, topology.DLQStream, err)
		}
		return nil, fmt.Errorf("%w (job %s)", ErrNoResult, w.JobID)
	}
}

// submission is one Submit waiting for its answer: the first of an
// answer, a refusal or a dead letter ends it.
type submission struct {
	id, digest string
	once       sync.Once
	done       chan struct{}
	// rejected is closed when the job's rejection is dead-lettered.
	rejected     chan struct{}
	rejectedOnce sync.Once
	data         json.RawMessage
	err          error

	mu         sync.Mutex
	unreadable error // why the dead letters could not be read
}

func (s *submission) lettersUnread() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unreadable
}

// end ends the submission with data or err, once.
func (s *submission) end(data json.RawMessage, err error) {
	s.once.Do(func() {
		s.data, s.err = data, err
		close(s.done)
	})
}

// answer takes a message for job s.id. digest is its Hybridscore-Digest:
// an answer for other content ends the submission with ErrConflict. An
// answer without one is a rejection: on the reply subject it is this job's.
// Stored (read for a copy the jobs stream dropped as a duplicate), it is
// another copy's when this job passes the checks that rejection failed: the
// corrected job was dropped behind its rejected copy, and ErrConflict says
// to publish it again after the window.
func (s *submission) answer(data []byte, digest string, stored bool) {
	var r struct {
		JobID string `json:"job_id"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &r) != nil || r.JobID != s.id {
		return
	}
	if digest != "" && digest != s.digest {
		// Another content's result (this job's digest is "" when it
		// does not decode: then no result is its answer).
		s.end(nil, fmt.Errorf("%w (job %s: its stored answer is for other content)", ErrConflict, s.id))
		return
	}
	if stored && digest == "" && s.digest != "" && r.Error != nil && !ownRejection(r.Error.Code, r.Error.Message) {
		// A rejection of another copy. It may be an old one, with the
		// copy this one duplicates still on its way to a record: give
		// that record a moment to follow before saying so.
		code, msg := r.Error.Code, r.Error.Message
		time.AfterFunc(rejectedCopyGrace, func() {
			s.end(nil, fmt.Errorf("%w (job %s: the answer stored for this id is the rejection of a copy with other content (%s: %s), and the jobs stream dropped this one as its duplicate: publish it again once the duplicate window has passed)",
				ErrConflict, s.id, code, msg))
		})
		return
	}
	s.end(append(json.RawMessage(nil), data...), nil)
}

// rejectedCopyGrace is how long a stored rejection of another copy waits
// for a record to follow it.
const rejectedCopyGrace = 5 * time.Second

// ownRejection tells whether a rejection may be of a job that decodes and
// validates here (digestOf gives it a digest): only the worker's own
// limits (too_large) and reply-subject rules are not checked here.
func ownRejection(code, message string) bool {
	return code == job.CodeTooLarge || strings.Contains(message, "reply_subject")
}

// letter takes a dead letter of job s.id. A conflict is never answered: it
// ends the submission at once. A rejection is answered (on the reply
// subject, or stored, where Submit then reads it): the answer ends it. Any other reason (max_deliveries,
// internal) ends it unless an answer comes within deadLetterGrace.
func (s *submission) letter(reason, msg string) {
	if job.Rejected(reason) {
		// Only a rejection this very content earns (it does not decode,
		// or the worker's own limits and reply-subject rules): another
		// copy's is not this job's answer.
		if s.digest == "" || ownRejection(reason, msg) {
			s.rejectedOnce.Do(func() { close(s.rejected) })
		}
		return
	}
	if reason == reasonConflict {
		s.end(nil, fmt.Errorf("%w (job %s: answered before for other content, this one dead-lettered as %s)", ErrConflict, s.id, reason))
		return
	}
	time.AfterFunc(deadLetterGrace, func() {
		s.end(nil, fmt.Errorf("%w (job %s, reason %s: %s)", ErrDeadLettered, s.id, reason, msg))
	})
}

// orderedInactive is how long the server keeps a Submit's ordered
// consumer that could not be deleted once nothing reads it: its default (5
// minutes) would leave one or two per Submit.
const orderedInactive = 5 * time.Second

// watchLetters reads the dead letters of lane stored from since on,
// headers only, on a goroutine of its own (a user that may not read them
// finds out by a timeout, which must not hold up the publish), and hands
// those of job s.id to s. It returns the function that stops reading.
func (c *Client) watchLetters(ctx context.Context, lane string, s *submission, since time.Time) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		cctx, ccancel := context.WithTimeout(wctx, 2*time.Second)
		defer ccancel()
		cons, err := c.JS.OrderedConsumer(cctx, topology.DLQStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{topology.DLQPrefix + lane}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since, HeadersOnly: true,
			InactiveThreshold: orderedInactive})
		if err != nil {
			if wctx.Err() == nil {
				if errors.Is(err, context.DeadlineExceeded) {
					err = errors.New("no answer within 2 s (may this user read it?)")
				}
				s.mu.Lock()
				s.unreadable = err
				s.mu.Unlock()
			}
			return
		}
		defer c.deleteOrdered(ctx, topology.DLQStream, cons)
		cc, err := cons.Consume(func(m jetstream.Msg) {
			// A letter of other content under the same id (another
			// producer's conflicting job) is not this job's.
			if h := m.Headers(); h.Get(headerJobID) == s.id && (h.Get(headerDigest) == "" || h.Get(headerDigest) == s.digest) {
				s.letter(h.Get(headerReason), h.Get(headerError))
			}
		})
		if err != nil {
			return
		}
		<-wctx.Done()
		cc.Stop()
	})
	return func() { cancel(); wg.Wait() }
}

// readStored reads job s.id's stored result of lane, through JetStream,
// now or when it is stored, and hands it to s. It returns the function
// that stops reading.
func (c *Client) readStored(ctx context.Context, lane string, s *submission) (stop func()) {
	cons, err := c.JS.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{job.ResultSubject(lane, s.id)}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, InactiveThreshold: orderedInactive})
	if err != nil {
		// Read what is stored, if anything, once.
		go func() {
			if m, err := c.storedMsg(ctx, lane, s.id); err == nil {
				s.answer(m.Data, m.Header.Get(headerDigest), true)
			}
		}()
		return func() {}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { s.answer(m.Data(), m.Headers().Get(headerDigest), true) })
	if err != nil {
		c.deleteOrdered(ctx, topology.ResultsStream, cons)
		return func() {}
	}
	return func() { cc.Stop(); c.deleteOrdered(ctx, topology.ResultsStream, cons) }
}

// deleteOrdered deletes an ordered consumer once read: nats.go leaves it
// to the server, which keeps it while its last pull request lasts and
// orderedInactive after. Best effort: a user that may not delete it leaves
// it to expire.
func (c *Client) deleteOrdered(ctx context.Context, stream string, cons jetstream.Consumer) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = c.JS.DeleteConsumer(dctx, stream, cons.CachedInfo().Name)
}
