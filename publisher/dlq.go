package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/topology"
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

func (f dlqFilter) match(m *jetstream.RawStreamMsg) bool {
	return (len(f.Reason) == 0 || slices.Contains(f.Reason, m.Header.Get(consumer.HeaderReason))) &&
		(len(f.Lane) == 0 || slices.Contains(f.Lane, topology.Lane(m.Header.Get(consumer.HeaderSubject)))) &&
		(len(f.JobID) == 0 || slices.Contains(f.JobID, m.Header.Get(consumer.HeaderJobID)))
}

// eachDeadLetter calls fn for every dead letter that f selects, oldest
// first, reading the stream by sequence.
func eachDeadLetter(ctx context.Context, js jetstream.JetStream, f dlqFilter, fn func(*jetstream.RawStreamMsg) error) error {
	s, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", topology.DLQStream, err)
	}
	st := s.CachedInfo().State
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return err
		}
		if f.match(m) {
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	return nil
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
	err = eachDeadLetter(ctx, c.JS, l.dlqFilter, func(m *jetstream.RawStreamMsg) error {
		reason, lane := m.Header.Get(consumer.HeaderReason), topology.Lane(m.Header.Get(consumer.HeaderSubject))
		counts[[2]string{reason, lane}]++
		if l.IDs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.Sequence, reason, m.Header.Get(consumer.HeaderJobID), lane, m.Header.Get(consumer.HeaderError))
		}
		return nil
	})
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

// Run publishes each selected dead letter's payload, unchanged, to the
// subject it came from. It gets a new Nats-Msg-Id (replay-<dead letter
// sequence>) so the jobs stream's duplicate window does not drop it, and
// arrives as a new message: a fresh delivery budget, the same job_id.
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
	n := 0
	err = eachDeadLetter(ctx, c.JS, r.dlqFilter, func(m *jetstream.RawStreamMsg) error {
		subject := m.Header.Get(consumer.HeaderSubject)
		if !strings.HasPrefix(subject, topology.JobsPrefix) && !strings.HasPrefix(subject, topology.BulkPrefix) {
			return fmt.Errorf("dead letter %d: its subject %q is not a job subject", m.Sequence, subject)
		}
		n++
		if r.DryRun {
			fmt.Printf("would replay %d: job %s to %s (%s)\n", m.Sequence, m.Header.Get(consumer.HeaderJobID), subject, m.Header.Get(consumer.HeaderReason))
			return nil
		}
		if _, err := c.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: m.Data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{"replay-" + strconv.FormatUint(m.Sequence, 10)}}}); err != nil {
			return fmt.Errorf("replay dead letter %d: %w", m.Sequence, err)
		}
		if r.Delete {
			if err := dlq.DeleteMsg(ctx, m.Sequence); err != nil {
				return fmt.Errorf("delete dead letter %d: %w", m.Sequence, err)
			}
		}
		fmt.Printf("replayed %d: job %s to %s\n", m.Sequence, m.Header.Get(consumer.HeaderJobID), subject)
		return nil
	})
	fmt.Printf("%d dead letters %s\n", n, map[bool]string{true: "would be replayed", false: "replayed"}[r.DryRun])
	return err
}
