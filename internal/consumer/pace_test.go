package consumer

import (
	"testing"

	"golang.org/x/time/rate"
)

// A worker that has only seen a trickle, its pool mostly idle, is not held
// to a share of the trickle: its capacity is what its busy time says it
// could do (at most a hundred times what it did, and bootstrapCapacity).
// Beyond that, it is what it did.
func TestPaceCapacityFromBusyTime(t *testing.T) {
	p := newPace(0.1, 2)
	for range 8 {
		p.tick(100, 0.02) // 100 jobs/s, the pool 2% busy
	}
	if p.capacity != bootstrapCapacity || p.bulk.Limit() != rate.Limit(bootstrapCapacity/10) {
		t.Fatalf("capacity %.0f, bulk pace %v; want %d (100 / 0.02, capped) and a tenth", p.capacity, p.bulk.Limit(), bootstrapCapacity)
	}
	q0 := newPace(0.1, 2)
	q0.tick(10, 0.00001) // busy time extrapolates a hundredfold at most
	if q0.capacity != 1000 {
		t.Fatalf("capacity %.0f, want 1000", q0.capacity)
	}
	p.tick(20000, 0.2) // a high rate seen: that is the capacity, not 100000
	if p.capacity != 20000 {
		t.Fatalf("capacity %.0f, want 20000", p.capacity)
	}
	p.tick(30000, 1) // saturated: what it did is what it can do
	if p.capacity != 30000 || p.bulk.Limit() != rate.Limit(3000) {
		t.Fatalf("capacity %.0f, bulk pace %v; want 30000 and 3000", p.capacity, p.bulk.Limit())
	}
	p.tick(0, 0) // idle: the highest lately is kept, forgotten slowly
	if p.capacity < 29000 {
		t.Fatalf("capacity %.0f after an idle tick", p.capacity)
	}
	q := newPace(0.1, 2)
	q.tick(0, 0)
	if q.bulk.Limit() != rate.Limit(10) {
		t.Fatalf("bulk pace %v with nothing seen, want the floor of 10/s", q.bulk.Limit())
	}
}
