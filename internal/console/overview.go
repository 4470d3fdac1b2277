package console

import (
	"context"
	"errors"
	"net/http"
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

// sample is what rates are measured between.
type sample struct {
	at       time.Time
	finished []uint64
	results  uint64
	rates    []float64 // the rates measured at this sample: finished per class, then results
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
	s := &sample{at: now, finished: make([]uint64, len(classes))}
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
			s.finished[i] = state.LastSeq - state.Msgs
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
		s.results = st.CachedInfo().State.LastSeq
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

// rates measures the rates since the previous sample at least a second old,
// so that several open pages refreshing at once still see steady figures.
func (c *Console) rates(s *sample) []float64 {
	c.rateMu.Lock()
	defer c.rateMu.Unlock()
	p := c.prev
	if p != nil && s.at.Sub(p.at) < time.Second {
		return p.rates
	}
	if p != nil && s.at.Sub(p.at) > maxRateSpan {
		// Nobody looked for a while: a rate over that gap would be an
		// average of hours, not what happens now. Unknown until the
		// next refresh.
		p = nil
	}
	s.rates = make([]float64, len(classes)+1)
	for i := range s.rates {
		s.rates[i] = -1
	}
	if p != nil {
		dt := s.at.Sub(p.at).Seconds()
		per := func(now, then uint64) float64 {
			if now < then {
				return -1 // the stream was recreated
			}
			return float64(now-then) / dt
		}
		for i := range classes {
			s.rates[i] = per(s.finished[i], p.finished[i])
		}
		s.rates[len(classes)] = per(s.results, p.results)
	}
	c.prev = s
	return s.rates
}

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request) {
	c.page(w, r, http.StatusOK, "overview.html", c.Overview(r.Context()))
}

// overviewPartial is the overview's live part, fetched every 2 s.
func (c *Console) overviewPartial(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "overview.html", "live", c.Overview(r.Context()))
}
