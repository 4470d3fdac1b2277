package console

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/deadletter"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// ReasonCount is how many dead letters of one lane have one reason.
type ReasonCount struct {
	Reason, Lane string
	N            int
}

// tally counts the dead letters by reason and lane and indexes them by
// sequence: the headers are read once, without payloads, and then only
// those of the letters that arrive. A reason is only in a letter's headers;
// the index lets a page filtered by reason, or a lookup by job id, go
// straight to the letters instead of rescanning the stream.
type tally struct {
	js jetstream.JetStream

	mu    sync.Mutex
	ready bool   // the stream has been read once
	last  uint64 // last sequence read
	seqs  []uint64
	keys  []int32 // index into names; -1: deleted
	ids   []string
	names []ReasonCount // N: live letters with that key
	index map[[2]string]int32
	live  int
	err   error
}

func newTally(js jetstream.JetStream) *tally {
	t := &tally{js: js}
	t.reset()
	return t
}

func (t *tally) reset() {
	t.ready, t.last, t.seqs, t.keys, t.ids, t.names, t.index, t.live = false, 0, nil, nil, nil, nil, map[[2]string]int32{}, 0
}

// run keeps the tally current until ctx ends.
func (t *tally) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := t.refresh(ctx)
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refresh reads the letters stored since the last refresh. When the stream
// holds fewer letters than counted (deleted elsewhere, expired, purged or
// recreated), it reads the stream again from its first letter.
func (t *tally) refresh(ctx context.Context) error {
	s, err := t.js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", topology.DLQStream, err)
	}
	st := s.CachedInfo().State
	t.mu.Lock()
	from := t.last + 1
	if st.LastSeq < t.last {
		t.reset()
		from = 1
	}
	t.mu.Unlock()
	if st.LastSeq >= from && st.Msgs > 0 {
		if err := scanHeaders(ctx, t.js, topology.DLQStream, nil, max(from, st.FirstSeq), st.LastSeq, t.add, nil); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = max(t.last, st.LastSeq)
	if uint64(t.live) != st.Msgs {
		// Counted letters are gone: count again from the start.
		t.reset()
		t.mu.Unlock()
		err := scanHeaders(ctx, t.js, topology.DLQStream, nil, st.FirstSeq, st.LastSeq, t.add, nil)
		t.mu.Lock()
		if err != nil {
			return err
		}
		t.last = max(t.last, st.LastSeq)
	}
	t.ready = true
	return nil
}

func (t *tally) add(seq uint64, h nats.Header) {
	// Cloned: a header value shares its memory with the message's other
	// headers, which would otherwise stay alive with it.
	k := [2]string{strings.Clone(h.Get(consumer.HeaderReason)), strings.Clone(deadletter.Lane(h))}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.seqs); n > 0 && t.seqs[n-1] >= seq {
		return // already counted
	}
	i, ok := t.index[k]
	if !ok {
		i = int32(len(t.names))
		t.index[k] = i
		t.names = append(t.names, ReasonCount{Reason: k[0], Lane: k[1]})
	}
	t.names[i].N++
	t.seqs = append(t.seqs, seq)
	t.keys = append(t.keys, i)
	t.ids = append(t.ids, strings.Clone(h.Get(consumer.HeaderJobID)))
	t.live++
	t.last = max(t.last, seq)
}

// deleted forgets the letter at seq (deleted by this console).
func (t *tally) deleted(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.seqs), func(i int) bool { return t.seqs[i] >= seq })
	if i < len(t.seqs) && t.seqs[i] == seq && t.keys[i] >= 0 {
		t.names[t.keys[i]].N--
		t.keys[i], t.ids[i] = -1, ""
		t.live--
	}
}

// counts returns the live letters by reason and lane; ready is false until
// the stream has been read once.
func (t *tally) counts() (out []ReasonCount, total int, ready bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rc := range t.names {
		if rc.N > 0 {
			out = append(out, rc)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Reason != out[j].Reason {
			return out[i].Reason < out[j].Reason
		}
		return out[i].Lane < out[j].Lane
	})
	return out, t.live, t.ready, t.err
}

// find returns up to n sequences after seq of letters f selects; ok is
// false until the tally is ready.
func (t *tally) find(after uint64, f deadletter.Filter, n int) (seqs []uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ready {
		return nil, false
	}
	i := sort.Search(len(t.seqs), func(i int) bool { return t.seqs[i] > after })
	for ; i < len(t.seqs) && len(seqs) < n; i++ {
		k := t.keys[i]
		if k < 0 {
			continue
		}
		if rc := t.names[k]; f.MatchFields(rc.Reason, rc.Lane, t.ids[i]) {
			seqs = append(seqs, t.seqs[i])
		}
	}
	return seqs, true
}

// position places the page of up to n letters after sequence after among
// those f selects: before is how many of them come at or before after,
// total how many there are, and prev the "after" of the page before it
// (hasPrev false on the first page). ok is false until the tally is ready.
func (t *tally) position(after uint64, f deadletter.Filter, n int) (before, total int, prev uint64, hasPrev, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ready {
		return 0, 0, 0, false, false
	}
	// The last n+1 selected sequences at or before after: the oldest of
	// them is where the page before starts after.
	ring := make([]uint64, n+1)
	for i, seq := range t.seqs {
		k := t.keys[i]
		if k < 0 {
			continue
		}
		if rc := t.names[k]; !f.MatchFields(rc.Reason, rc.Lane, t.ids[i]) {
			continue
		}
		total++
		if seq <= after {
			ring[before%(n+1)] = seq
			before++
		}
	}
	switch {
	case before == 0:
		return before, total, 0, false, true
	case before <= n:
		return before, total, 0, true, true
	}
	return before, total, ring[(before-n-1)%(n+1)], true, true
}

// scanHeaders reads the headers of stream's messages from sequence from to
// upto (on filter's subjects, every subject when empty) with an ordered
// consumer, oldest first, and calls fn for each until stop (when not nil)
// says enough.
func scanHeaders(ctx context.Context, js jetstream.JetStream, stream string, filter []string, from, upto uint64, fn func(seq uint64, h nats.Header), stop func() bool) error {
	if from == 0 {
		from = 1
	}
	if upto < from {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: filter,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from, HeadersOnly: true, InactiveThreshold: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			if md.Sequence.Stream > upto {
				return nil
			}
			fn(md.Sequence.Stream, m.Headers())
			if md.Sequence.Stream == upto || md.NumPending == 0 || stop != nil && stop() {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if n == 0 {
			return nil // nothing more on these subjects
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
