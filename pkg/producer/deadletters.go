package producer

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Headers of a dead letter: the job it holds, and its payload's hash
// (docs/contract.md#dead-letters).
const (
	headerJobID       = "Hybridscore-Job-Id"
	headerPayloadHash = "Hybridscore-Payload-Hash"
)

// headerReason is a dead letter's reason header, headerError its
// message, and reasonConflict the reason of a job whose job_id was answered
// before for other content.
const (
	headerReason   = "Hybridscore-Reason"
	headerError    = "Hybridscore-Error"
	reasonConflict = "job_id_conflict"
)

// deadLetterGrace is how long a job of this run that was dead-lettered is
// still waited for: a rejected job is dead-lettered and answered, and its
// result may come after its dead letter.
const deadLetterGrace = 2 * time.Second

// watchDeadLetters reads the lane's dead letters, headers only, for the
// whole run: those stored before it (b.deadBefore; catchUp waits for them)
// keep their jobs from being published again, and one that comes for a job
// of this run gives up waiting for it unless its result follows within
// deadLetterGrace. A user that may not read the dead letters is told in
// the summary. It returns the function that stops reading, or nil.
func (b *batch) watchDeadLetters(ctx context.Context, js jetstream.JetStream) (stop func()) {
	subject := topology.DLQPrefix + b.o.Lane
	// A user the server does not let read them finds out by a timeout: a
	// short one, the API answers in milliseconds otherwise.
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	unread := func(err error) func() {
		b.s.DeadLettersUnread = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			b.s.DeadLettersUnread = topology.DLQStream + " did not answer within 2s (may this user read it?)"
		}
		return nil
	}
	st, err := js.Stream(ictx, topology.DLQStream)
	if err != nil {
		return unread(err)
	}
	info, err := st.Info(ictx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return unread(err)
	}
	b.deadBefore = info.State.Subjects[subject]
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, HeadersOnly: true})
	if err != nil {
		return unread(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		h := m.Headers()
		b.onDeadLetter(h.Get(headerJobID), h.Get(headerReason), h.Get(headerDigest), h.Get(headerPayloadHash))
	})
	if err != nil {
		return unread(err)
	}
	return cc.Stop
}

// letterOf is what a dead letter says of the job it holds: its content's
// digest (a job that decoded), else its payload's hash; either may be
// unknown (a letter of an earlier version).
type letterOf struct {
	digest  string
	payload uint64
}

// otherThan reports whether the letter holds other content than w, the
// job as the batch publishes it: by digest when the letter has one (the
// reply subject, which a rerun may change, is not content), else by the
// payload's bytes; false when the letter says neither.
func (l letterOf) otherThan(w *job.Wire) bool {
	switch {
	case l.digest != "":
		return l.digest != digestOf(w)
	case l.payload != 0:
		data, _ := json.Marshal(w)
		return xxhash.Sum64(data) != l.payload
	}
	return false
}

// onDeadLetter records the dead letter of job id: a job of the run
// dead-lettered as job_id_conflict is a job_id reused for other content
// (Summary.Conflicts), any other one dead-lettered without a result.
func (b *batch) onDeadLetter(id, reason, digest, payloadHash string) {
	h := xxhash.Sum64String(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deadRead++
	b.cond.Broadcast()
	if id == "" {
		return
	}
	if d, ok := b.digests[h]; ok && digest != "" && d != digest {
		return // a letter of other content under this id: not this job's
	}
	// What the letter says of its job: the same job corrected in the
	// file since is published again.
	l := letterOf{digest: digest}
	l.payload, _ = strconv.ParseUint(payloadHash, 16, 64)
	b.dead[h] = l
	if _, ok := b.pending[h]; ok {
		time.AfterFunc(deadLetterGrace, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, still := b.pending[h]; still && !b.closed {
				delete(b.pending, h)
				delete(b.digests, h)
				if reason == reasonConflict {
					b.s.Conflicts = append(b.s.Conflicts, id)
				} else {
					b.s.DeadLetteredNow++
				}
				b.cond.Broadcast()
			}
		})
	}
}
