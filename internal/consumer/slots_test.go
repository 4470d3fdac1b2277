package consumer

import (
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/eventually"
)

func TestSlotsServeInteractiveFirstAndBulkItsShare(t *testing.T) {
	s := newSlots(1, 0.25)
	if !s.acquire(Bulk, nil) {
		t.Fatal("free slot refused")
	}
	// 40 bulk and 40 interactive waiters queue behind the one slot.
	order := make(chan Class, 80)
	for i := range 80 {
		c := Class(i % 2)
		go func() {
			if s.acquire(c, nil) {
				order <- c
				s.release()
			}
		}()
	}
	eventually.True(t, 5*time.Second, func() bool { return s.queued() == 80 }, "80 waiters queued")
	s.granted = [2]float64{}
	s.release()
	var firstHalf [2]int
	for i := range 80 {
		c := <-order
		if i < 40 {
			firstHalf[c]++
		}
	}
	// While interactive jobs wait, bulk gets about its share, not more.
	if firstHalf[Bulk] < 6 || firstHalf[Bulk] > 14 {
		t.Fatalf("of the first 40 grants, %d interactive and %d bulk; want bulk near 25%%", firstHalf[Interactive], firstHalf[Bulk])
	}
}

func TestSlotsCancelledWaiterLeavesTheQueue(t *testing.T) {
	s := newSlots(1, 0.1)
	s.acquire(Interactive, nil)
	cancel := make(chan struct{})
	done := make(chan bool)
	go func() { done <- s.acquire(Bulk, cancel) }()
	eventually.True(t, 5*time.Second, func() bool { return s.queued() == 1 }, "the bulk waiter queued")
	close(cancel)
	if <-done {
		t.Fatal("cancelled acquire succeeded")
	}
	if n := s.queued(); n != 0 {
		t.Fatalf("%d waiters queued after the cancel", n)
	}
	s.release()
	if !s.acquire(Interactive, nil) {
		t.Fatal("slot lost")
	}
}

// queued counts the waiters of both classes.
func (s *slots) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting[Interactive]) + len(s.waiting[Bulk])
}
