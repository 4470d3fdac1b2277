package consumer

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/eventually"
)

// wire records the acks that reached the connection, in order.
type wire struct {
	mu   sync.Mutex
	acks []int
}

func (w *wire) sent() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

// wireMsg is a message whose Ack is recorded on a wire.
type wireMsg struct {
	jetstream.Msg // nil in the unit tests: only Ack is called
	id            int
	w             *wire
}

func (m *wireMsg) Ack() error {
	m.w.mu.Lock()
	m.w.acks = append(m.w.acks, m.id)
	m.w.mu.Unlock()
	return nil
}

func TestAckOrderSendsAcksInArrivalOrder(t *testing.T) {
	var w wire
	a := newAckOrder(8, zap.NewNop())
	a.period = time.Hour // no skipping here
	n := make([]uint64, 6)
	for i := range n {
		n[i] = a.arrive()
	}
	a.ack(n[3], &wireMsg{id: 3, w: &w})
	a.ack(n[1], &wireMsg{id: 1, w: &w})
	a.ack(n[2], &wireMsg{id: 2, w: &w})
	if got := w.sent(); len(got) != 0 {
		t.Fatalf("acks sent before the first arrival was released: %v", got)
	}
	a.release(n[0]) // naked: no ack of its own, but no longer in the way
	if got := w.sent(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("after the first was released: %v, want [1 2 3]", got)
	}
	a.ack(n[4], &wireMsg{id: 4, w: &w})
	a.release(n[4]) // finish after ack: nothing more
	a.ack(n[5], &wireMsg{id: 5, w: &w})
	if got := w.sent(); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("acks at the head go at once: %v", got)
	}
	if a.ready != 0 || a.head != a.tail {
		t.Fatalf("head %d tail %d ready %d, want nothing held", a.head, a.tail, a.ready)
	}
}

func TestAckOrderSkipsAJobThatDoesNotMove(t *testing.T) {
	var w wire
	a := newAckOrder(8, zap.NewNop())
	a.period = 5 * time.Millisecond
	slow, fast := a.arrive(), a.arrive()
	a.ack(fast, &wireMsg{id: 2, w: &w})
	eventually.True(t, 5*time.Second, func() bool { return slices.Equal(w.sent(), []int{2}) },
		"the ack behind a job that does not move is sent after a check period or two")
	a.ack(slow, &wireMsg{id: 1, w: &w})
	if got := w.sent(); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("the slow job's own ack: %v, want [2 1]", got)
	}
	eventually.True(t, 5*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.armed
	}, "the check timer stops once nothing waits")
}

func TestAckOrderWindowNeverFillsUp(t *testing.T) {
	var w wire
	a := newAckOrder(1, zap.NewNop()) // the smallest window: 64
	a.period = time.Hour
	stuck := a.arrive()
	for i := 1; i <= 200; i++ {
		a.ack(a.arrive(), &wireMsg{id: i, w: &w})
	}
	got := w.sent()
	if len(got) < 200-len(a.slots) || !slices.IsSorted(got) {
		t.Fatalf("with one job stuck, %d of 200 acks were sent (window %d), in order: %v", len(got), len(a.slots), slices.IsSorted(got))
	}
	a.flush()
	if got := w.sent(); len(got) != 200 {
		t.Fatalf("after flush %d of 200 acks sent", len(got))
	}
	a.ack(stuck, &wireMsg{id: 0, w: &w})
	if got := w.sent(); got[len(got)-1] != 0 {
		t.Fatalf("the stuck job's late ack was not sent: %v", got[len(got)-5:])
	}
	a.release(stuck) // stale: harmless
}

// The pump acks in arrival order though the pool finishes jobs out of
// order; a job that blocks for long does not hold the others' acks.
func TestPumpAcksInArrivalOrder(t *testing.T) {
	const jobs = 300
	const slowJob = 7
	var w wire
	e := newPump(t, HandlerFunc(func(_ context.Context, d *Delivery) Reply {
		id := string(d.Data)
		i, _ := strconv.Atoi(id)
		if i == slowJob {
			if !d.MayBlock {
				return Reply{Disposition: NeedsIO}
			}
			time.Sleep(time.Second)
		} else if rand.IntN(3) == 0 {
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		}
		return Reply{Disposition: Publish, JobID: "job-" + id, Digest: "d", Result: []byte(`{"job_id":"job-` + id + `"}`), Status: "scored"}
	}), func(c *Config) { c.Prefetch = 64 })
	acks := e.w.src[Interactive].acks
	acks.mu.Lock()
	acks.period = 100 * time.Millisecond // a stall of a slow CI machine is not a slow job
	acks.mu.Unlock()
	ms := make([]*fakeMsg, jobs)
	for i := range ms {
		ms[i] = newFake("order", []byte(strconv.Itoa(i)), 1)
	}
	go func() {
		for i, m := range ms {
			for e.w.heldCount() >= 64 { // as the puller does: no more than Prefetch held
				time.Sleep(100 * time.Microsecond)
			}
			e.w.admit(e.w.src[Interactive], &wireMsg{Msg: m, id: i, w: &w})
		}
	}()
	eventually.True(t, 20*time.Second, func() bool { return len(w.sent()) == jobs }, "every job acked")
	got := w.sent()
	if got[len(got)-1] != slowJob {
		t.Errorf("the slow job's ack was not the last: %v", got[len(got)-5:])
	}
	rest := slices.DeleteFunc(slices.Clone(got), func(i int) bool { return i == slowJob })
	if !slices.IsSorted(rest) {
		t.Fatalf("acks out of arrival order: %v", rest)
	}
}
