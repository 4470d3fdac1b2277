package bench

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Replies compares jobs that each name a reply subject of their own (a
// request's inbox, or pipeline.<lane>.job<i>) with jobs that share one:
// the worker keeps which subjects a stream stores in memory, so a new
// subject per job costs no lookup and no wait.
type Replies struct {
	Own, Shared Throughput
	Ratio       float64 // Own ÷ Shared
}

// replies runs the two scenarios of Replies, warm cache, jobs published
// beforehand; the reply subjects are plain (no stream stores them), as a
// requester's are.
func (b *run) replies(ctx context.Context, tasks, patterns, warm []string) error {
	n := b.o.Replies
	reply := func(lane string, own bool) func(i int) []byte {
		return func(i int) []byte {
			w := job.Wire{JobID: lane + "-" + strconv.Itoa(i), TaskDescription: tasks[i%len(tasks)], HistoricalPatternText: patterns[i%len(patterns)],
				VectorSimilarity: float64(i%100) / 100, ReplySubject: "pipeline." + lane + ".all"}
			if own {
				w.ReplySubject = "pipeline." + lane + ".job" + strconv.Itoa(i)
			}
			data, _ := json.Marshal(w)
			return data
		}
	}
	for _, own := range []bool{true, false} {
		lane := "bench-replies-" + nonce()
		t, peak, err := b.scenarioOf(ctx, topology.JobsPrefix, lane, n, tasks, patterns, warm, false, reply(lane, own))
		if err != nil {
			return err
		}
		name := "shared reply subject:"
		if own {
			b.rep.Replies.Own = t
			name = "a reply subject each:"
		} else {
			b.rep.Replies.Shared = t
		}
		b.printf("%-22s%s%s\n", name, t, peakNote(peak))
	}
	if s := b.rep.Replies.Shared.PerSec; s > 0 {
		b.rep.Replies.Ratio = b.rep.Replies.Own.PerSec / s
	}
	b.printf("reply subject each ÷ shared: %.2f\n", b.rep.Replies.Ratio)
	return nil
}
