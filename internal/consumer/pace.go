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
// in the last second, bulk jobs are pulled at BulkShare × the worker's
// capacity; with no interactive job, at full speed.
//
// The capacity is the highest rate of finished jobs seen lately, or, while
// that is low, what the pool's busy time says the worker could do (up to
// bootstrapCapacity): a worker that has only seen a trickle of interactive
// jobs has not shown its rate, and would otherwise hold a bulk backlog to a
// share of the trickle. The pool's time is not all a job costs (publishing
// and the broker are not in it), so beyond a trickle only the rate seen
// counts.
type pace struct {
	share       float64
	workers     int          // pool goroutines
	interactive atomic.Int64 // unix ns of the last interactive arrival
	finished    atomic.Int64 // jobs finished, both classes
	busyNanos   atomic.Int64 // pool time spent handling jobs
	capacity    float64      // jobs/s, highest lately (pace's goroutine only)
	bulk        *rate.Limiter
}

// minBusy bounds how far the pool's busy time extrapolates: at most a
// hundred times the rate seen.
const minBusy = 0.01

// bootstrapCapacity caps the busy-time estimate, jobs/s: about a tenth of
// what one worker does on two cores with a warm cache.
const bootstrapCapacity = 3000

func newPace(share float64, workers int) *pace {
	return &pace{share: share, workers: max(1, workers), bulk: rate.NewLimiter(rate.Inf, 1)}
}

// ran records d of pool time spent on one job step.
func (p *pace) ran(d time.Duration) { p.busyNanos.Add(int64(d)) }

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
		p.tick(float64(n-last)/tick.Seconds(), float64(p.busyNanos.Swap(0))/(float64(p.workers)*float64(tick)))
		last = n
	}
}

// tick updates the capacity from the last tick's rate of finished jobs and
// the share of the pool's time they took, and sets the bulk pace.
func (p *pace) tick(r, busy float64) {
	est := r
	if r > 0 {
		est = math.Max(r, math.Min(r/math.Min(1, math.Max(busy, minBusy)), bootstrapCapacity))
	}
	// The highest lately, forgotten slowly (half-life ~35 s).
	p.capacity = math.Max(est, p.capacity*0.995)
	limit := math.Max(p.share*p.capacity, 10)
	p.bulk.SetLimit(rate.Limit(limit))
	p.bulk.SetBurst(max(1, int(limit/10))) // a tenth of a second's worth
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
