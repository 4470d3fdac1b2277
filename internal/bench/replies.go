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
	Own, Shared             Throughput   // medians
	OwnRounds, SharedRounds []Throughput // each round's
	Ratio                   float64      // Own ÷ Shared
}

// repliesRounds is the least number of rounds of the replies scenario: a
// few hundred jobs drain in tens of milliseconds, where one pause of the
// machine moves a single round's rate by a third.
const repliesRounds = 9

// replies runs the two scenarios of Replies, alternating, at least
// repliesRounds times each, warm cache, jobs published beforehand; the
// reply subjects are plain (no stream stores them), as a requester's are.
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
	rounds := max(b.o.Rounds, repliesRounds)
	rp := &b.rep.Replies
	for r := 1; r <= rounds; r++ {
		for _, own := range []bool{true, false} {
			lane := "bench-replies-" + nonce()
			t, peak, err := b.scenarioOf(ctx, topology.JobsPrefix, lane, n, tasks, patterns, warm, false, reply(lane, own))
			if err != nil {
				return err
			}
			name := "shared reply subject "
			if own {
				rp.OwnRounds = append(rp.OwnRounds, t)
				name = "a reply subject each "
			} else {
				rp.SharedRounds = append(rp.SharedRounds, t)
			}
			b.printf("round %d/%d  %s%s%s\n", r, rounds, name, t, peakNote(peak))
		}
	}
	rp.Own, rp.Shared = median(rp.OwnRounds), median(rp.SharedRounds)
	b.printf("a reply subject each: median %.0f results/s of %d rounds (%s)\n", rp.Own.PerSec, rounds, rates(rp.OwnRounds))
	b.printf("shared reply subject: median %.0f results/s of %d rounds (%s)\n", rp.Shared.PerSec, rounds, rates(rp.SharedRounds))
	if s := rp.Shared.PerSec; s > 0 {
		rp.Ratio = rp.Own.PerSec / s
	}
	b.printf("reply subject each ÷ shared: %.2f (medians)\n", rp.Ratio)
	return nil
}
