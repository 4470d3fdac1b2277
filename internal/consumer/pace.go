package consumer

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// pace keeps bulk pulls, while interactive jobs are arriving, to what
// leaves the interactive ones their speed. Room, pool and waiting slots
// already put interactive jobs first inside the worker, and guarantee bulk
// its share while interactive jobs saturate it; but the cores and the
// broker are shared too. So beside live interactive traffic (10 jobs a
// second or more, liveGap) bulk is pulled at BulkShare × capacity; beside
// a trickle, at capacity × headroom − the trickle's rate (all it can
// take); with interactive jobs waiting in their stream, at BulkShare × the
// rate lately. The share is a floor under saturation, never a ceiling.
// With no interactive job in the last second bulk is pulled at full speed.
//
// The capacity is the highest rate of finished jobs seen lately, or, while
// that is low, what the pool's busy time says the worker could do (up to
// bootstrapCapacity): a worker that has only seen a trickle has not shown
// its rate. The headroom above it lets the rate seen grow to what the
// worker can really do (a quarter more each tick) rather than pin it.
type pace struct {
	share       float64
	workers     int          // pool goroutines
	interactive arrivals     // interactive jobs received
	finished    atomic.Int64 // jobs finished, both classes
	busyNanos   atomic.Int64 // pool time spent handling jobs
	capacity    float64      // jobs/s, highest lately (pace's goroutine only)
	// lately is the rate of finished jobs, smoothed over about a second
	// (pace's goroutine only). Shares are taken of it, not of capacity:
	// the highest of noisy rates is above their mean, and a share of it
	// gave bulk 0.13 of a saturated worker instead of 0.10.
	lately float64
	inRate float64 // interactive jobs/s lately (pace's goroutine only)
	// backlog is the interactive consumer's pending count the last
	// interactive job arrived with, plus one (0: never told; see
	// interactiveBacklog).
	backlog atomic.Int64
	bulk    *rate.Limiter
	// bulkLive paces bulk while interactive jobs arrive as live traffic
	// (liveGap): to its share of the capacity.
	bulkLive *rate.Limiter
	// starts paces, beside live traffic, the bulk jobs that start work
	// that waits (startBulk) at the same rate as pulls: when live traffic
	// begins the worker may already hold three quarters of Prefetch in
	// bulk jobs, and scoring those cold at full speed kept the first
	// interactive jobs waiting up to 48 ms.
	starts *rate.Limiter
}

// liveGap tells live interactive traffic from a trickle: jobs arriving
// this close together on average (10 a second or more). Beside live
// traffic, bulk at full speed saturates the cores and the broker, and the
// interactive jobs wait for them: with 200 interactive jobs/s behind a
// cold bulk backlog drained at full speed, their p99 went from 1.4 ms
// (idle) to 93 ms. A trickle is too few jobs for that to matter, and
// holding bulk to its share beside one made bulk 0.02 of its speed alone.
const liveGap = 100 * time.Millisecond

// arrivals records interactive jobs as they are received: when the last
// came (whether interactive jobs are arriving) and how many (their rate,
// which is all bulk leaves them).
type arrivals struct {
	last  atomic.Int64 // unix ns
	count atomic.Int64
	// gap is the mean gap between arrivals lately, ns, and gaps how many
	// it holds since the last pause.
	mu   sync.Mutex
	gap  float64
	gaps int
	// liveUntil is when the arrivals stop counting as live traffic
	// unless more come, unix ns.
	liveUntil atomic.Int64
}

// Store records an arrival at unixNano.
func (a *arrivals) Store(unixNano int64) {
	a.count.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.last.Swap(unixNano)
	g := float64(unixNano - prev)
	switch {
	case prev == 0 || g > float64(time.Second): // the first after a pause
		a.gaps = 0
	case a.gaps == 0:
		a.gap, a.gaps = g, 1
	default:
		a.gap, a.gaps = 0.75*a.gap+0.25*g, a.gaps+1
	}
	// Two gaps at least: one short gap is not yet traffic.
	if a.gaps >= 2 && a.gap < float64(liveGap) {
		a.liveUntil.Store(unixNano + int64(time.Second))
	}
}

// live reports whether interactive jobs are arriving as live traffic.
func (a *arrivals) live() bool { return time.Now().UnixNano() < a.liveUntil.Load() }

// Load returns the last arrival's time, unix ns.
func (a *arrivals) Load() int64 { return a.last.Load() }

// interactiveBacklog records the interactive jobs still waiting in the
// stream behind one that just arrived (its metadata's NumPending). With it
// pace knows saturation when it sees it: interactive jobs waiting means
// they use all they can get, and bulk is held to its share; none waiting
// means bulk may have everything they leave. Without it (never told) pace
// infers saturation from the interactive rate alone.
func (p *pace) interactiveBacklog(pending uint64) {
	p.backlog.Store(int64(min(pending, 1<<62)) + 1)
}

// minBusy bounds how far the pool's busy time extrapolates: at most a
// hundred times the rate seen.
const minBusy = 0.01

// bootstrapCapacity caps the busy-time estimate, jobs/s: about a tenth of
// what one worker does on two cores with a warm cache.
const bootstrapCapacity = 3000

// maxHeadroom is how far above the capacity seen bulk may be pulled beside
// a trickle of interactive jobs: the rate seen can only grow if the pace
// lets it.
const maxHeadroom = 2

func newPace(share float64, workers int) *pace {
	return &pace{share: share, workers: max(1, workers), bulk: rate.NewLimiter(rate.Inf, 1), bulkLive: rate.NewLimiter(rate.Inf, 1),
		starts: rate.NewLimiter(rate.Inf, 1)}
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
	last, lastIn := p.finished.Load(), p.interactive.count.Load()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		n, in := p.finished.Load(), p.interactive.count.Load()
		p.tick(float64(n-last)/tick.Seconds(), float64(p.busyNanos.Swap(0))/(float64(p.workers)*float64(tick)), float64(in-lastIn)/tick.Seconds())
		last, lastIn = n, in
	}
}

// tick updates the capacity from the last tick's rate of finished jobs and
// the share of the pool's time they took, the interactive rate from the
// last tick's arrivals, and sets the bulk pace.
func (p *pace) tick(r, busy, interactive float64) {
	est := r
	if r > 0 {
		est = math.Max(r, math.Min(r/math.Min(1, math.Max(busy, minBusy)), bootstrapCapacity))
	}
	// The highest lately, forgotten slowly (half-life ~35 s).
	p.capacity = math.Max(est, p.capacity*0.995)
	if p.lately == 0 {
		p.lately = r
	} else {
		p.lately = 0.75*p.lately + 0.25*r
	}
	// A rising interactive rate counts at once, a falling one fades over
	// a few ticks (arrivals come in pulls, not evenly).
	p.inRate = math.Max(interactive, p.inRate*0.5)
	// Interactive jobs using less than bulk's share (a trickle) leave
	// bulk headroom above the capacity seen, so that it shows what the
	// worker can really do. Using more, they may be saturating it: then
	// bulk gets the capacity they leave, their rate counted as if it were
	// their part, 1 − share, of it: at that part (saturation) bulk is held
	// to its share, and while bulk takes more the limit pushes it back.
	// Below saturation bulk gets most of what they leave (at half the
	// capacity, 0.89 of it with the default share).
	limit := maxHeadroom * p.capacity
	switch b := p.backlog.Load(); {
	case b > 1: // interactive jobs waiting: saturated, bulk gets its share
		limit = p.share * p.lately
	case b == 1: // none waiting: bulk gets what they leave
		limit = maxHeadroom*p.capacity - p.inRate
	case p.inRate >= p.share*p.capacity:
		limit = p.capacity - p.inRate/(1-p.share)
	}
	live := math.Max(math.Min(limit, p.share*p.capacity), 10)
	limit = math.Max(math.Max(p.share*p.lately, limit), 10)
	p.bulk.SetLimit(rate.Limit(limit))
	p.bulk.SetBurst(max(1, int(limit/10))) // a tenth of a second's worth
	p.bulkLive.SetLimit(rate.Limit(live))
	p.bulkLive.SetBurst(max(1, int(live/10)))
	p.starts.SetLimit(rate.Limit(live))
	p.starts.SetBurst(max(1, int(live/100))) // evenly, not a pull's worth at once
}

// admit returns how many of n bulk jobs may be pulled now, waiting for the
// pace while interactive jobs arrive; 0 when ctx ends.
func (p *pace) admit(ctx context.Context, n int) int {
	if !p.busy() {
		return n
	}
	lim, live := p.bulk, p.interactive.live()
	if live {
		lim = p.bulkLive
	}
	// Before the first tick the pace is unlimited. Taking one job per pull
	// then (its burst) made a worker started beside a trickle of
	// interactive jobs spend its first second ramping up from there; only
	// live traffic or interactive jobs waiting keep bulk to that until the
	// pace is known.
	if lim.Limit() == rate.Inf && !live && p.backlog.Load() <= 1 {
		return n
	}
	n = min(n, lim.Burst())
	if err := lim.WaitN(ctx, n); err != nil {
		return 0
	}
	return n
}

// startBulk waits, beside live traffic, for a bulk job's turn to start
// work that waits (an analysis); false when quit closes first.
func (p *pace) startBulk(quit <-chan struct{}) bool {
	if !p.interactive.live() {
		return true
	}
	r := p.starts.Reserve()
	d := r.Delay()
	if !r.OK() || d == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		r.Cancel()
		return false
	}
}
