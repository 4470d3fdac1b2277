package consumer

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ackOrder sends one source's acks in the order its messages arrived.
//
// Why: an ack deletes the job from its work-queue stream, and nats-server
// rewrites a file-store block inline whenever a delete that is not the
// block's first leaves it less than half full. With the pool's goroutines
// finishing jobs a few places out of order, nearly every block was
// compacted several times on its way out, which cost the broker about
// 0.7 µs per job (docs/operations.md, "Measuring throughput"). In order,
// each delete only moves the block's first sequence on.
//
// An ack is held only behind a job that arrived earlier and is still on
// its way, and never for long: a job that has not moved for a whole check
// period (ackCheck) while acks wait behind it is skipped and acked on its
// own when it finishes, and so is one that would overflow the window. A
// job released without an ack (naked, terminated, given back) frees its
// place at once. The result is stored before its ack is even queued, so a
// held ack delays nothing a requester waits for; a crash while acks are
// held redelivers those jobs, which are answered from their stored
// results.
type ackOrder struct {
	log *zap.Logger

	mu     sync.Mutex
	slots  []ackSlot // ring by arrival number; len is a power of two
	head   uint64    // oldest arrival not yet released
	tail   uint64    // next arrival number
	ready  int       // acks waiting behind head
	armed  bool      // the check timer is running
	seen   uint64    // head at the previous check
	timer  *time.Timer
	period time.Duration
}

type ackSlot struct {
	n     uint64        // the arrival number this slot holds
	state uint8         // slotPending, slotAck, slotDone
	m     jetstream.Msg // to ack, in state slotAck
}

const (
	slotPending uint8 = iota
	slotAck
	slotDone
)

// ackCheck is how often a job that blocks acks behind it is looked at:
// one that has not moved since the previous look is skipped, so an ack
// waits at most about two periods.
const ackCheck = 10 * time.Millisecond

// newAckOrder returns an ackOrder whose window holds at least 2×held
// arrivals: a full pull waiting for the pool fits in it, and room is left
// for acks behind a slow job.
func newAckOrder(held int, log *zap.Logger) *ackOrder {
	n := 64
	for n < 2*held {
		n *= 2
	}
	a := &ackOrder{log: log, slots: make([]ackSlot, n), period: ackCheck}
	a.timer = time.AfterFunc(time.Hour, a.check)
	a.timer.Stop()
	return a
}

// slot is arrival n's place in the ring.
func (a *ackOrder) slot(n uint64) *ackSlot { return &a.slots[n&uint64(len(a.slots)-1)] }

// arrive numbers a message that just arrived.
func (a *ackOrder) arrive() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tail-a.head >= uint64(len(a.slots)) {
		a.skip(a.head + 1)
	}
	n := a.tail
	a.tail++
	*a.slot(n) = ackSlot{n: n}
	return n
}

// ack acks m, arrival n, once every earlier arrival is released.
func (a *ackOrder) ack(n uint64, m jetstream.Msg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n < a.head {
		// Skipped while it was slow: its neighbours went on without it.
		a.send(m)
		return
	}
	s := a.slot(n)
	if s.n != n || s.state != slotPending {
		a.send(m) // released already: never drop an ack
		return
	}
	s.state, s.m = slotAck, m
	a.ready++
	if n == a.head {
		a.advance()
	}
	if a.ready > 0 && !a.armed {
		a.armed, a.seen = true, a.head
		a.timer.Reset(a.period)
	}
}

// release frees arrival n without an ack of its own (its message was
// naked or terminated, or was acked through ack).
func (a *ackOrder) release(n uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n < a.head {
		return
	}
	s := a.slot(n)
	if s.n != n || s.state != slotPending {
		return
	}
	s.state = slotDone
	if n == a.head {
		a.advance()
	}
}

// flush sends every ack still held, skipping what is on its way (at
// shutdown, before the connection goes).
func (a *ackOrder) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.skip(a.tail)
}

// advance moves head past released arrivals, sending their acks (under
// a.mu, so that acks of two goroutines keep their order on the wire).
func (a *ackOrder) advance() {
	for a.head < a.tail && a.slot(a.head).state != slotPending {
		a.pop()
	}
}

// skip moves head to at least to, past arrivals still on their way (they
// are acked on their own when they finish), then as far as it can.
func (a *ackOrder) skip(to uint64) {
	for a.head < to && a.head < a.tail {
		a.pop()
	}
	a.advance()
}

// pop releases the arrival at head, sending its ack if it has one.
func (a *ackOrder) pop() {
	s := a.slot(a.head)
	if s.state == slotAck {
		a.send(s.m)
		a.ready--
	}
	s.state, s.m = slotDone, nil
	a.head++
}

// check skips the job at head if acks have waited behind it since the
// previous check and it has not moved.
func (a *ackOrder) check() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ready == 0 {
		a.armed = false
		return
	}
	if a.head == a.seen {
		// Skip up to the newest held ack: everything before it is slow.
		last := a.head
		for n := a.head; n < a.tail; n++ {
			if a.slot(n).state == slotAck {
				last = n
			}
		}
		a.skip(last + 1)
	}
	if a.ready == 0 {
		a.armed = false
		return
	}
	a.seen = a.head
	a.timer.Reset(a.period)
}

func (a *ackOrder) send(m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		// The result is stored: a redelivery finds it and repeats it.
		a.log.Warn("ack failed after publish", zap.String("subject", m.Subject()), zap.Error(err))
	}
}
