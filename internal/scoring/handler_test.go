package scoring

import (
	"context"
	"testing"

	"github.com/hybridscore/hybridscore/internal/consumer"
)

type panicScorer struct{}

func (panicScorer) Score(context.Context, *Request) (Outcome, error) { panic("injected") }
func (panicScorer) ScoreCached(Request) (Outcome, bool, error)       { panic("injected") }

// A panic while scoring is a bug of the worker: Fail with reason internal,
// never an invalid_* rejection of the job.
func TestPanicInScoringIsInternalNotTheJobsFault(t *testing.T) {
	h := &JobHandler{Scorer: panicScorer{}, WorkerID: "w"}
	d := &consumer.Delivery{Lane: "p", Attempt: 1,
		Data: []byte(`{"job_id":"boom-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`)}
	for _, mayBlock := range []bool{false, true} {
		d.MayBlock = mayBlock
		rep := h.Handle(context.Background(), d)
		if rep.Disposition != consumer.Fail || rep.Reason != consumer.ReasonInternal || rep.JobID != "boom-1" {
			t.Fatalf("may block %v: %+v", mayBlock, rep)
		}
	}
}

// A job whose job_id cannot be read is still answered on a reply subject
// that could: the requester learns why it was refused. One that addresses
// what the worker manages is not.
func TestRejectionWithoutJobIDIsSentToItsReplySubject(t *testing.T) {
	h := &JobHandler{Scorer: panicScorer{}, WorkerID: "w"}
	for data, want := range map[string]string{
		`{"job_id":12,"task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"reply_subject":"_INBOX.r1"}`:            "_INBOX.r1",
		`{"job_id":12,"task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"reply_subject":"scoring.jobs.default"}`: "",
	} {
		rep := h.Handle(context.Background(), &consumer.Delivery{Lane: "r", Attempt: 1, Seq: 7, Data: []byte(data)})
		if rep.Disposition != consumer.Reject || rep.JobID != "seq-7" || rep.Subject != want {
			t.Errorf("%s: %+v, want reply subject %q", data, rep, want)
		}
	}
}
