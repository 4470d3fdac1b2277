package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/deadletter"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// dlqCmd lists and replays dead letters.
type dlqCmd struct {
	List   dlqListCmd   `cmd:"" help:"Count the dead letters by reason and lane, and list them (--ids)."`
	Replay dlqReplayCmd `cmd:"" help:"Publish selected dead letters again as jobs, payload and job id unchanged, with a fresh delivery budget."`
}

type dlqFilter struct {
	Reason []string `help:"Only dead letters with this reason (invalid_json, max_deliveries, job_id_conflict, internal, …); repeatable."`
	Lane   []string `help:"Only dead letters of this lane; repeatable."`
	JobID  []string `name:"job-id" help:"Only dead letters of this job; repeatable."`
}

func (f dlqFilter) filter() deadletter.Filter {
	return deadletter.Filter{Reason: f.Reason, Lane: f.Lane, JobID: f.JobID}
}

type dlqListCmd struct {
	natsFlags
	dlqFilter
	IDs bool `name:"ids" help:"Also list each dead letter: sequence, reason, job id, lane, message."`
}

func (l *dlqListCmd) Run(ctx context.Context) error {
	c, err := l.connect()
	if err != nil {
		return err
	}
	defer c.NC.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	counts := map[[2]string]int{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if l.IDs {
		fmt.Fprintln(tw, "SEQ\tREASON\tJOB ID\tLANE\tMESSAGE")
	}
	err = deadletter.Each(ctx, c.JS, l.filter(), func(m *jetstream.RawStreamMsg) error {
		reason, lane := m.Header.Get(consumer.HeaderReason), deadletter.Lane(m.Header)
		counts[[2]string{reason, lane}]++
		if l.IDs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.Sequence, reason, m.Header.Get(consumer.HeaderJobID), lane, m.Header.Get(consumer.HeaderError))
		}
		return nil
	})
	if err != nil && len(counts) == 0 {
		return err // nothing read: no empty table above the error
	}
	if l.IDs {
		_ = tw.Flush()
		fmt.Println()
	}
	keys := make([][2]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	fmt.Fprintln(tw, "REASON\tLANE\tDEAD LETTERS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", k[0], k[1], counts[k])
	}
	_ = tw.Flush()
	return err
}

type dlqReplayCmd struct {
	natsFlags
	dlqFilter
	Delete bool `help:"Delete each dead letter once its job is published again."`
	DryRun bool `name:"dry-run" help:"Only say what would be replayed."`
}

// Run publishes each selected dead letter's payload again as
// deadletter.Replay does: unchanged, to the subject it came from, a fresh
// delivery budget, the same job_id.
func (r *dlqReplayCmd) Run(ctx context.Context) error {
	if len(r.Reason)+len(r.Lane)+len(r.JobID) == 0 {
		return errors.New("choose what to replay: --reason, --lane or --job-id (see publisher dlq list)")
	}
	c, err := r.connect()
	if err != nil {
		return err
	}
	defer c.NC.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	dlq, err := c.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		return err
	}
	n, dups := 0, 0
	refused := map[string]int{} // letters refused for their payload, by reason
	err = deadletter.Each(ctx, c.JS, r.filter(), func(m *jetstream.RawStreamMsg) error {
		subject, err := deadletter.Target(m)
		if err != nil {
			return err
		}
		n++
		if reason := m.Header.Get(consumer.HeaderReason); job.Rejected(reason) || reason == consumer.ReasonConflict {
			refused[reason]++
		}
		if r.DryRun {
			fmt.Printf("would replay %d: job %s to %s (%s)\n", m.Sequence, m.Header.Get(consumer.HeaderJobID), subject, m.Header.Get(consumer.HeaderReason))
			return nil
		}
		published, err := deadletter.Replay(ctx, c.JS, dlq, m, r.Delete)
		if err != nil {
			return err
		}
		if !published {
			dups++
			fmt.Printf("not published %d: job %s was replayed from this dead letter less than the duplicate window ago\n", m.Sequence, m.Header.Get(consumer.HeaderJobID))
			return nil
		}
		fmt.Printf("replayed %d: job %s to %s\n", m.Sequence, m.Header.Get(consumer.HeaderJobID), subject)
		return nil
	})
	// A replay publishes the payload unchanged: what was refused for its
	// payload is refused again (the console says the same).
	for reason, k := range refused {
		if reason == consumer.ReasonConflict {
			fmt.Printf("warning: %d of them dead-lettered as %s: refused again while their job ids' first results are kept (publish them under new job ids instead)\n", k, reason)
		} else {
			fmt.Printf("warning: %d of them dead-lettered as %s: refused again unless the limit or rule that refused them has changed (publish the corrected jobs instead; publisher batch publishes a corrected job again)\n", k, reason)
		}
	}
	if r.DryRun {
		fmt.Printf("%d dead letters would be replayed\n", n)
	} else {
		stopped := ""
		if err != nil {
			stopped = ", then it stopped (below)"
		}
		fmt.Printf("%d dead letters replayed%s\n", n-dups, stopped)
		if dups > 0 {
			fmt.Printf("%d not published again: replayed less than the jobs stream's duplicate window ago\n", dups)
		}
	}
	return err
}
