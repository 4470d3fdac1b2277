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
