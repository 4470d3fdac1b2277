package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/topology"
)

// ClassView is one job class: its stream, its consumer's backlog and its
// rate.
type ClassView struct {
	Name, Stream, Consumer string
	// Pending: jobs not yet delivered; AckPending: delivered, not finished.
	Pending, AckPending uint64
	// Oldest is the age of the oldest job the stream holds.
	Oldest time.Duration
	// FinishedRate is jobs a second leaving the work queue (acknowledged
	// or dead-lettered); negative until two samples exist.
	FinishedRate float64
	// Paused: an operator paused the consumer (nats consumer pause) for
	// PauseRemaining more; its jobs wait meanwhile.
	Paused         bool
	PauseRemaining time.Duration
	// Known is false when the stream or the consumer could not be read:
	// the figures are then not zero but unknown.
	Known bool
	Err   string
}

// Overview is the overview page's data.
type Overview struct {
	At          time.Time
	Classes     []ClassView
	Results     uint64
	ResultsRate float64
	DeadLetters []ReasonCount
	DeadTotal   int
	DeadReady   bool
	DeadErr     string
	Workers     []Worker
	Answering   int // workers that answer now (the others are gone)
	WorkersErr  string
	// ResultsKnown is false when the results stream could not be read.
	ResultsKnown bool
	ResultsErr   string
	// Outage is set when NATS did not answer every question: the page
	// says so above every figure.
	Outage bool
}

// sample is one reading of the counters rates are measured between:
// finished jobs per class, then stored results. known says which were
// read; a counter whose stream did not answer is not 0.
type sample struct {
	at     time.Time
	counts []uint64
	known  []bool
}

// reading is a counter's last known value.
type reading struct {
	v  uint64
	at time.Time
	ok bool
}

var classes = []struct{ name, stream, consumer string }{
	{"interactive", topology.JobsStream, topology.Consumer},
	{"bulk", topology.BulkStream, topology.BulkConsumer},
}

// Overview gathers the overview: each class's stream and consumer, the
// results stream, the dead-letter counts and every worker's status.
func (c *Console) Overview(ctx context.Context) Overview {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	o := Overview{At: now}
	if err := c.connected(); err != nil {
		o.Outage, o.ResultsErr, o.WorkersErr, o.ResultsRate = true, err.Error(), err.Error(), -1
		for _, cl := range classes {
			o.Classes = append(o.Classes, ClassView{Name: cl.name, Stream: cl.stream, Consumer: cl.consumer, FinishedRate: -1, Err: err.Error()})
		}
		o.DeadLetters, o.DeadTotal, o.DeadReady, _ = c.tally.counts()
		o.DeadErr = err.Error()
		return o
	}
	s := &sample{at: now, counts: make([]uint64, len(classes)+1), known: make([]bool, len(classes)+1)}
	// A stream or consumer that does not exist yet (no worker provisioned
	// them) is an answer, not an outage.
	unanswered := func(err error) bool {
		return !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound)
	}
	for i, cl := range classes {
		v := ClassView{Name: cl.name, Stream: cl.stream, Consumer: cl.consumer}
		if st, err := c.js.Stream(ctx, cl.stream); err != nil {
			v.Err = err.Error()
			o.Outage = o.Outage || unanswered(err)
		} else {
			state := st.CachedInfo().State
			// A work queue removes each finished job: every message stored
			// and no longer held has finished (or was deleted).
			s.counts[i], s.known[i] = state.LastSeq-state.Msgs, true
			if state.Msgs > 0 && !state.FirstTime.IsZero() {
				v.Oldest = now.Sub(state.FirstTime)
			}
			if cons, err := st.Consumer(ctx, cl.consumer); err != nil {
				v.Err = err.Error()
				o.Outage = o.Outage || unanswered(err)
			} else {
				info := cons.CachedInfo()
				v.Pending, v.AckPending, v.Known = info.NumPending, uint64(info.NumAckPending), true
				v.Paused, v.PauseRemaining = info.Paused, info.PauseRemaining
			}
		}
		o.Classes = append(o.Classes, v)
	}
	if st, err := c.js.Stream(ctx, topology.ResultsStream); err == nil {
		s.counts[len(classes)], s.known[len(classes)] = st.CachedInfo().State.LastSeq, true
		o.Results, o.ResultsKnown = st.CachedInfo().State.Msgs, true
	} else {
		o.ResultsErr, o.Outage = err.Error(), o.Outage || unanswered(err)
	}
	rates := c.rates(s)
	for i := range o.Classes {
		o.Classes[i].FinishedRate = rates[i]
	}
	o.ResultsRate = rates[len(classes)]
	var err error
	o.DeadLetters, o.DeadTotal, o.DeadReady, err = c.tally.counts()
	if err != nil {
		o.DeadErr, o.Outage = err.Error(), true
	}
	if o.Workers, err = Workers(ctx, c.cfg.NC); err != nil {
		o.WorkersErr, o.Outage = err.Error(), true
	} else {
		o.Workers = c.seen.with(o.Workers, time.Now())
		for _, w := range o.Workers {
			if w.Gone.IsZero() {
				o.Answering++
			}
		}
	}
	o.Outage = o.Outage || !c.cfg.NC.IsConnected()
	return o
}

// maxRateSpan is the longest interval a rate is measured over.
const maxRateSpan = 10 * time.Second

// rates measures each counter's rate since its last reading, when that is
// at least a second old (so that several open pages refreshing at once
// still see steady figures) and at most maxRateSpan (a rate over a longer
// gap would be an average of hours, not what happens now). A counter that
// was not read breaks its series: its rate is unknown (-1) now and at the
// next reading, which starts a new series, never a difference from 0.
func (c *Console) rates(s *sample) []float64 {
	c.rateMu.Lock()
	defer c.rateMu.Unlock()
	if c.lastRates != nil && s.at.Sub(c.ratesAt) < time.Second {
		out := slices.Clone(c.lastRates)
		for i, known := range s.known {
			if !known {
				out[i] = -1 // not shown beside a "–" of this very reading
			}
		}
		return out
	}
	if c.last == nil {
		c.last = make([]reading, len(s.counts))
	}
	out := make([]float64, len(s.counts))
	for i, v := range s.counts {
		out[i] = -1
		l := &c.last[i]
		if !s.known[i] {
			l.ok = false
			continue
		}
		// A smaller count: the stream was recreated.
		if dt := s.at.Sub(l.at); l.ok && dt <= maxRateSpan && v >= l.v {
			out[i] = float64(v-l.v) / dt.Seconds()
		}
		*l = reading{v: v, at: s.at, ok: true}
	}
	c.ratesAt, c.lastRates = s.at, out
	return out
}

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request) {
	c.page(w, r, http.StatusOK, "overview.html", c.Overview(r.Context()))
}

// overviewPartial is the overview's live part, fetched every 2 s.
func (c *Console) overviewPartial(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "overview.html", "live", c.Overview(r.Context()))
}
