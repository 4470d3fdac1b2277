package consumer

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// pace keeps bulk jobs to their share of the worker's capacity while
// interactive jobs are arriving. Room, pool and waiting slots already put
// interactive jobs first inside the worker, but the broker and the cores
// are shared: a bulk backlog drained at full speed would queue interactive
// jobs behind its own publishes there. So while an interactive job arrived
// in the last second, bulk jobs are pulled at BulkShare × the highest rate
// of finished jobs seen lately; with no interactive job, at full speed.
type pace struct {
	share       float64
	interactive atomic.Int64 // unix ns of the last interactive arrival
	finished    atomic.Int64 // jobs finished, both classes
	capacity    float64      // jobs/s, highest lately (pace's goroutine only)
	bulk        *rate.Limiter
}

func newPace(share float64) *pace {
	return &pace{share: share, bulk: rate.NewLimiter(rate.Inf, 1)}
}

// busy reports whether interactive jobs are arriving.
func (p *pace) busy() bool {
	return time.Now().UnixNano()-p.interactive.Load() < int64(time.Second)
}

// measure updates the capacity estimate every tick until quit closes.
func (p *pace) measure(quit <-chan struct{}) {
	const tick = 250 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := p.finished.Load()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		n := p.finished.Load()
		r := float64(n-last) / tick.Seconds()
		last = n
		// The highest rate lately, forgotten slowly (half-life ~35 s).
		p.capacity = math.Max(r, p.capacity*0.995)
		limit := math.Max(p.share*p.capacity, 10)
		p.bulk.SetLimit(rate.Limit(limit))
		p.bulk.SetBurst(max(1, int(limit/10))) // a tenth of a second's worth
	}
}

// admit returns how many of n bulk jobs may be pulled now, waiting for the
// pace while interactive jobs arrive; 0 when ctx ends.
func (p *pace) admit(ctx context.Context, n int) int {
	if !p.busy() {
		return n
	}
	n = min(n, p.bulk.Burst())
	if err := p.bulk.WaitN(ctx, n); err != nil {
		return 0
	}
	return n
}
