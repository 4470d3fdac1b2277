package consumer

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// A worker that has only seen a trickle, its pool mostly idle, is not held
// to a share of the trickle: its capacity is what its busy time says it
// could do (at most a hundred times what it did, and bootstrapCapacity).
// Beyond that, it is what it did.
func TestPaceCapacityFromBusyTime(t *testing.T) {
	p := newPace(0.1, 2)
	for range 8 {
		p.tick(100, 0.02, 0) // 100 jobs/s, the pool 2% busy
	}
	if p.capacity != bootstrapCapacity {
		t.Fatalf("capacity %.0f; want %d (100 / 0.02, capped)", p.capacity, bootstrapCapacity)
	}
	q0 := newPace(0.1, 2)
	q0.tick(10, 0.00001, 0) // busy time extrapolates a hundredfold at most
	if q0.capacity != 1000 {
		t.Fatalf("capacity %.0f, want 1000", q0.capacity)
	}
	p.tick(20000, 0.2, 0) // a high rate seen: that is the capacity, not 100000
	if p.capacity != 20000 {
		t.Fatalf("capacity %.0f, want 20000", p.capacity)
	}
	p.tick(0, 0, 0) // idle: the highest lately is kept, forgotten slowly
	if p.capacity < 19000 {
		t.Fatalf("capacity %.0f after an idle tick", p.capacity)
	}
	q := newPace(0.1, 2)
	q.tick(0, 0, 0)
	if q.bulk.Limit() != rate.Limit(10) {
		t.Fatalf("bulk pace %v with nothing seen, want the floor of 10/s", q.bulk.Limit())
	}
}

// Bulk is paced to what interactive jobs leave: a trickle leaves it all
// but the trickle; interactive jobs using all the capacity leave it its
// share, a floor.
func TestPaceLeavesBulkWhatInteractiveDoesNotUse(t *testing.T) {
	p := newPace(0.1, 2)
	p.tick(10000, 1, 0)
	for range 20 { // a trickle of 2 jobs/s beside bulk at the capacity
		p.tick(10000, 1, 2)
	}
	if l := float64(p.bulk.Limit()); l < 0.8*p.capacity {
		t.Fatalf("bulk pace %.0f/s beside a trickle of 2/s, capacity %.0f", l, p.capacity)
	}
	for range 20 { // interactive jobs take it all
		p.tick(10000, 1, 12000)
	}
	if l := float64(p.bulk.Limit()); l != 0.1*p.lately {
		t.Fatalf("bulk pace %.0f/s under interactive saturation, want the share of %.0f", l, p.lately)
	}
	for range 2 { // interactive jobs at half the capacity: bulk gets most of the rest
		p.tick(10000, 1, 5000)
	}
	if l := float64(p.bulk.Limit()); l < 0.4*p.capacity || l > 0.5*p.capacity {
		t.Fatalf("bulk pace %.0f/s beside interactive jobs at half the capacity %.0f", l, p.capacity)
	}
	for range 4 { // interactive traffic stopping: bulk gets it back within a second
		p.tick(10000, 1, 0)
	}
	if l := float64(p.bulk.Limit()); l < p.capacity {
		t.Fatalf("bulk pace %.0f/s a second after interactive traffic stopped, capacity %.0f", l, p.capacity)
	}
}

// Under saturation bulk's share is of the rate lately, not of the highest
// rate seen: rates that swing ±30 % around 10,000 jobs/s put the highest
// near 13,000, and a share of it gave bulk 0.13 of the results.
func TestPaceShareOfTheRateLatelyNotTheHighest(t *testing.T) {
	p := newPace(0.1, 2)
	p.interactiveBacklog(500)
	var sum, n float64
	for i := range 400 {
		r := 10000.0
		if i%2 == 0 {
			r = 13000
		} else {
			r = 7000
		}
		p.tick(r, 1, 9000)
		if i >= 20 {
			sum += float64(p.bulk.Limit())
			n++
		}
	}
	if p.capacity < 12000 {
		t.Fatalf("capacity %.0f: the test wants the highest rate well above the mean", p.capacity)
	}
	if mean := sum / n; mean < 900 || mean > 1100 {
		t.Fatalf("bulk pace %.0f/s on average under saturation; want the share of the mean rate, 1,000 (the highest rate seen is %.0f)", mean, p.capacity)
	}
}

// A pace that binds lets the rate seen grow: from the bootstrap estimate to
// a worker's real rate in a few ticks, not minutes.
func TestPaceCapacityGrowsToTheRealRate(t *testing.T) {
	p := newPace(0.1, 2)
	const real = 12000.0
	ticks := 0
	for p.capacity < real && ticks < 100 {
		allowed := float64(p.bulk.Limit())
		if p.capacity == 0 {
			allowed = 10
		}
		p.tick(min(allowed+2, real), 0.5, 2)
		ticks++
	}
	if ticks > 20 {
		t.Fatalf("%d ticks (of 250 ms) to find a rate of %.0f jobs/s", ticks, real)
	}
}

// Told the interactive backlog, pace knows saturation when it sees it:
// interactive jobs waiting hold bulk to its share, whatever their rate;
// none waiting leave bulk all but their rate.
func TestPaceWithTheInteractiveBacklog(t *testing.T) {
	p := newPace(0.1, 2)
	p.tick(10000, 1, 0)
	p.interactiveBacklog(500)
	p.tick(10000, 1, 200)
	if l := float64(p.bulk.Limit()); l != 0.1*p.lately {
		t.Fatalf("bulk pace %.0f/s with interactive jobs waiting, want the share of %.0f", l, p.lately)
	}
	p.interactiveBacklog(0)
	for range 4 {
		p.tick(10000, 1, 5000)
	}
	if l := float64(p.bulk.Limit()); l < p.capacity {
		t.Fatalf("bulk pace %.0f/s with no interactive job waiting, capacity %.0f", l, p.capacity)
	}
}

// Before its first tick the pace is unknown: beside a trickle bulk takes
// whole pulls (one job per pull made a worker started beside a trickle
// spend its first second ramping up), and only interactive jobs waiting
// hold it to one job per pull until the pace is known.
func TestPaceBeforeTheFirstTick(t *testing.T) {
	ctx := context.Background()
	p := newPace(0.1, 2)
	p.interactive.Store(time.Now().UnixNano()) // a trickle: interactive jobs arriving
	if got := p.admit(ctx, 500); got != 500 {
		t.Fatalf("admitted %d of 500 bulk jobs beside a trickle before the first tick", got)
	}
	p.interactiveBacklog(0) // told: none waiting
	if got := p.admit(ctx, 500); got != 500 {
		t.Fatalf("admitted %d of 500 bulk jobs with no interactive job waiting", got)
	}
	p.interactiveBacklog(800) // interactive jobs waiting
	if got := p.admit(ctx, 500); got != 1 {
		t.Fatalf("admitted %d bulk jobs with interactive jobs waiting and the pace unknown, want 1", got)
	}
	p.interactiveBacklog(0)
	p.tick(10000, 1, 2)
	if got := p.admit(ctx, 500); got != 500 || p.bulk.Limit() == rate.Inf {
		t.Fatalf("admitted %d of 500 after a tick at 10,000 jobs/s (pace %v)", got, p.bulk.Limit())
	}
}

// Interactive jobs arriving as live traffic (10 a second or more) hold
// bulk to its share of the capacity, so that the cores and the broker keep
// room for them; a trickle leaves bulk all it can take.
func TestPaceLiveTrafficHoldsBulkToItsShare(t *testing.T) {
	ctx := context.Background()
	p := newPace(0.1, 2)
	p.interactiveBacklog(0) // none waiting: not saturated
	now := time.Now().UnixNano()
	for i := range 3 { // a trickle, 2 a second
		p.interactive.Store(now - int64(2-i)*int64(500*time.Millisecond))
	}
	p.tick(10000, 1, 2)
	if p.interactive.live() {
		t.Fatal("2 interactive jobs a second taken for live traffic")
	}
	if got := p.admit(ctx, 500); got != 500 {
		t.Fatalf("admitted %d of 500 bulk jobs beside a trickle", got)
	}
	start := time.Now().UnixNano()
	for i := range 20 { // live traffic, 200 a second (the mean gap forgets the trickle's within these)
		p.interactive.Store(start + int64(i)*int64(5*time.Millisecond))
	}
	if !p.interactive.live() {
		t.Fatal("200 interactive jobs a second not taken for live traffic")
	}
	p.tick(10000, 1, 200)
	if l := float64(p.bulkLive.Limit()); l != 0.1*p.capacity {
		t.Fatalf("bulk pace %.0f/s beside live traffic, want the share of the capacity %.0f", l, p.capacity)
	}
	if got := p.admit(ctx, 500); got > 100 {
		t.Fatalf("admitted %d bulk jobs at once beside live traffic, want at most a tenth of a second's worth (100)", got)
	}
}

// Beside live traffic, bulk jobs start their waiting work at the pace of
// bulk pulls, one at a time, so the bulk jobs a worker already holds when
// live traffic begins do not take the cores at once; shutting down ends
// the wait.
func TestPaceStartsOfBulkBesideLiveTraffic(t *testing.T) {
	p := newPace(0.1, 2)
	p.interactiveBacklog(0)
	start := time.Now().UnixNano()
	for i := range 4 { // live traffic, 200 a second
		p.interactive.Store(start + int64(i)*int64(5*time.Millisecond))
	}
	p.tick(200, 1, 200) // capacity 200 jobs/s: bulk beside live traffic at 20/s
	quit := make(chan struct{})
	t0 := time.Now()
	for range 3 {
		if !p.startBulk(quit) {
			t.Fatal("a bulk start refused before shutdown")
		}
	}
	if el := time.Since(t0); el < 80*time.Millisecond {
		t.Fatalf("three bulk starts took %v beside live traffic at 20/s, want at least two intervals of 50 ms", el)
	}
	close(quit)
	if p.startBulk(quit) {
		t.Fatal("a bulk start went ahead after shutdown began")
	}
	q := newPace(0.1, 2) // no interactive traffic: no wait
	q.tick(200, 1, 0)
	t0 = time.Now()
	for range 100 {
		q.startBulk(nil)
	}
	if el := time.Since(t0); el > 50*time.Millisecond {
		t.Fatalf("100 bulk starts with no interactive traffic took %v", el)
	}
}
