package consumer

// Pulling: each class's puller fetches exactly as many messages as there is
// room for, every message that arrives is held (and kept alive) at once,
// and the pool takes interactive events first while bulk keeps its share.

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/topology"
)

// picker is one pool goroutine's record of what it served lately, and of
// its busy time not yet given to the pace.
type picker struct {
	served [2]float64
	busy   time.Time // when the time not yet given started; zero while idle
	steps  int       // steps since then
}

// busyFlushSteps is how many steps a busy pool goroutine runs between two
// readings of the clock: reading it around every step cost two clock reads
// per step, which at tens of thousands of jobs a second is noticeable, and
// the pace needs busy time only per tick (250 ms).
const busyFlushSteps = 32

// stepped counts a step, and every busyFlushSteps gives the busy time so
// far to the pace.
func (w *Worker) stepped(p *picker) {
	if p.steps++; p.steps >= busyFlushSteps {
		now := time.Now()
		w.pace.ran(now.Sub(p.busy))
		p.busy, p.steps = now, 0
	}
}

// idle gives the busy time so far to the pace before the goroutine waits.
func (w *Worker) idle(p *picker) {
	if !p.busy.IsZero() {
		w.pace.ran(time.Since(p.busy))
		p.busy, p.steps = time.Time{}, 0
	}
}

// next returns the next event for the pool: interactive first, except
// that bulk is taken first while its share of what this goroutine served
// lately is below BulkShare, so neither class starves. nil means quit.
// Only when both classes are empty does the goroutine read the clock and
// wait.
func (w *Worker) next(p *picker, quit <-chan struct{}) *item {
	first, second := w.src[Interactive], w.src[Bulk]
	if second != nil && p.served[Bulk] < w.cfg.BulkShare*(p.served[Interactive]+p.served[Bulk]+1) {
		first, second = second, first
	}
	// Without a bulk class, a nil channel: never ready.
	var secondEvents chan *item
	if second != nil {
		secondEvents = second.events
	}
	var it *item
	select {
	case it = <-first.events:
	default:
		select {
		case it = <-secondEvents:
		default:
			w.idle(p)
			select {
			case it = <-first.events:
			case it = <-secondEvents:
			case <-quit:
				return nil
			}
			p.busy = time.Now()
		}
	}
	p.served[it.class]++
	if p.served[Interactive]+p.served[Bulk] > 1000 { // remember recent work only
		p.served[Interactive] /= 2
		p.served[Bulk] /= 2
	}
	return it
}

// pull fetches messages of one class while ctx lasts, asking only for what
// there is room for, so every message that arrives is held and kept alive
// at once.
func (w *Worker) pull(ctx context.Context, src *source) {
	p := w.startPuller(ctx, src)
	if p == nil {
		return
	}
	// Whatever the subscription still holds is admitted before pull
	// returns (and, at shutdown, naked with the rest).
	defer p.close(time.Second)
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, nb := w.reserve(ctx, src)
		if n == 0 {
			return
		}
		if src.class == Bulk {
			if m := w.pace.admit(ctx, n); m < n {
				w.mu.Lock()
				src.reserved = m
				w.mu.Unlock()
				if n = m; n == 0 {
					w.unreserve(src)
					continue
				}
			}
		}
		// A pull request is never cut short, not even at shutdown: the
		// server would still send what it asked for. It expires after
		// PullWait, and what it brings is held (and, at shutdown, naked)
		// like the rest.
		err := p.pull(n, nb, w.cfg.PullWait)
		w.unreserve(src)
		switch {
		case err == nil, ctx.Err() != nil:
			delay = 100 * time.Millisecond
			continue
		case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
			w.ready.Store(false)
			w.log.Error("consumer gone; binding again", zap.String("consumer", src.name), zap.Error(err))
			w.rebind(ctx, src)
			w.ready.Store(ctx.Err() == nil)
			continue
		}
		w.log.Warn("pull", zap.Error(err), zap.Duration("retry_in", delay))
		sleep(ctx, delay)
		delay = min(2*delay, 5*time.Second)
	}
}

// startPuller subscribes src's puller, trying again after a growing pause
// until it can, or returns nil when ctx ends first.
func (w *Worker) startPuller(ctx context.Context, src *source) *puller {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		p, err := newPuller(w.nc, src.stream, src.name, func(m *nats.Msg) {
			it := &item{}
			it.pulled = pulledMsg{m: m, nc: w.nc}
			w.hold(src, it, &it.pulled)
		})
		if err == nil {
			return p
		}
		w.log.Warn("pull: subscribe", zap.Error(err), zap.Duration("retry_in", delay))
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// sleep waits d, or less if ctx ends first (false then).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// limit is how many messages src may hold now (under w.mu). Of Prefetch,
// bulk is always granted its share; interactive may take all the rest;
// bulk may take what interactive holds not, except a quarter kept free, so
// an interactive job never waits for room behind bulk ones. The other
// class's pending pull is not counted: an idle class's long poll must not
// keep the other from its room (together they may briefly hold up to
// 1.75 × Prefetch).
func (w *Worker) limit(src *source) int {
	h := w.cfg.Prefetch
	bulk := w.src[Bulk]
	if bulk == nil {
		return h
	}
	share := max(1, int(w.cfg.BulkShare*float64(h)))
	if src.class == Interactive {
		return h - max(bulk.held, share)
	}
	return max(share, h-w.src[Interactive].held-h/4)
}

// reserve waits until a pull is worth making (a sixteenth of the class's
// limit free, or nothing of it held) and room for any one message is left,
// and reserves it. A pull request costs the puller one publish, so the
// class refills in small steps and holds close to its limit (with Fetch,
// which subscribed anew for each request, it waited for a quarter). With
// two classes each pull may ask for half the byte budget, so the two
// together never ask for more than all of it.
func (w *Worker) reserve(ctx context.Context, src *source) (n, nb int) {
	budget := w.cfg.MaxHeldBytes
	if w.src[Bulk] != nil {
		budget /= 2
	}
	for {
		w.mu.Lock()
		lim := w.limit(src)
		free := lim - src.held - src.reserved
		freeBytes := min(w.cfg.MaxHeldBytes-w.heldBytes, budget)
		if free > 0 && (free >= max(1, lim/16) || src.held == 0) && freeBytes >= w.maxPayload {
			src.reserved, src.resBytes = free, freeBytes
			w.mu.Unlock()
			return free, freeBytes
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, 0
		case <-src.room:
		}
	}
}

func (w *Worker) unreserve(src *source) {
	w.mu.Lock()
	src.reserved, src.resBytes = 0, 0
	w.mu.Unlock()
	w.signal()
}

// signal wakes whoever waits for room.
func (w *Worker) signal() {
	for _, ch := range []chan struct{}{w.room, w.src[Interactive].room} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if b := w.src[Bulk]; b != nil {
		select {
		case b.room <- struct{}{}:
		default:
		}
	}
}

func msgSize(m jetstream.Msg) int {
	if pm, ok := m.(*pulledMsg); ok {
		// What arrived on the wire: subject, reply, headers and data.
		return pm.m.Size() + 64
	}
	n := len(m.Data()) + len(m.Subject()) + 64
	for k, vs := range m.Headers() {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// delivery reads what admitting a message needs of its metadata. A pulled
// message's is read with nats.go's core Metadata, without the copy into
// jetstream's type that its Metadata method makes.
func delivery(m jetstream.Msg) (delivered, seq, pending uint64, ok bool) {
	if pm, isPulled := m.(*pulledMsg); isPulled {
		md, err := pm.m.Metadata()
		if err != nil {
			return 0, 0, 0, false
		}
		return md.NumDelivered, md.Sequence.Stream, md.NumPending, true
	}
	md, err := m.Metadata()
	if err != nil {
		return 0, 0, 0, false
	}
	return md.NumDelivered, md.Sequence.Stream, md.NumPending, true
}

// hold holds m, a message of src that just arrived, in it and queues it
// for the pool. The item is the caller's: a pulled message lives in its
// item, one allocation for both.
func (w *Worker) hold(src *source, it *item, m jetstream.Msg) {
	it.m, it.size, it.class, it.ord = m, msgSize(m), src.class, src.acks.arrive()
	now := time.Now()
	it.progress.Store(now.UnixNano())
	it.d = Delivery{Subject: m.Subject(), Data: m.Data(), Header: m.Headers(), Lane: topology.Lane(m.Subject()), Class: src.class, Attempt: 1, Received: now}
	if delivered, seq, pending, ok := delivery(m); ok {
		it.d.Attempt, it.d.Seq = int(delivered), seq
		if src.class == Interactive {
			w.pace.interactiveBacklog(pending)
		}
	}
	it.d.Last = w.cfg.MaxDeliver > 0 && it.d.Attempt >= w.cfg.MaxDeliver
	w.mu.Lock()
	w.held[it] = struct{}{}
	w.heldBytes += it.size
	src.held++
	src.heldBytes += it.size
	src.reserved = max(0, src.reserved-1)
	src.resBytes = max(0, src.resBytes-it.size)
	w.mu.Unlock()
	w.obs.InFlight(1)
	if it.d.Attempt > 1 {
		w.obs.Redelivered(it.d.Lane)
	}
	if src.class == Interactive {
		w.pace.interactive.Store(now.UnixNano())
	}
	src.events <- it
}

func (w *Worker) watchPending(ctx context.Context, src *source) {
	t := time.NewTicker(w.cfg.PendingInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := w.consumer(src).Info(ictx); err == nil {
			var oldest time.Duration
			if s, err := w.js.Stream(ictx, src.stream); err == nil && s.CachedInfo().State.Msgs > 0 {
				// A work queue keeps only jobs not yet acked: its first
				// message is the oldest still waiting.
				oldest = time.Since(s.CachedInfo().State.FirstTime)
			}
			w.obs.ConsumerPending(src.class, info.NumPending, uint64(info.NumAckPending), oldest)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rebind binds src's consumer again, with backoff, until it can or ctx
// ends.
func (w *Worker) rebind(ctx context.Context, src *source) {
	bind := src.bind
	if bind == nil {
		bind = func(ctx context.Context) (jetstream.Consumer, error) {
			return w.js.Consumer(ctx, src.stream, src.name)
		}
	}
	delay := 250 * time.Millisecond
	for {
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := bind(bctx)
		cancel()
		if err == nil {
			w.consMu.Lock()
			src.cons = cons
			w.consMu.Unlock()
			w.log.Info("consumer bound again")
			return
		}
		w.log.Warn("bind consumer", zap.Error(err), zap.Duration("retry_in", delay))
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, 10*time.Second)
	}
}
