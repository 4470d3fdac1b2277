package console

import (
	"testing"
	"time"
)

// TestRatesAfterAnUnansweredRead: a counter whose stream did not answer
// (NATS connected but hung) is unknown, not 0, and the first reading after
// it starts a new series instead of a difference from 0 (which showed a
// quiet system at 1,000 results/s).
func TestRatesAfterAnUnansweredRead(t *testing.T) {
	c := &Console{}
	t0 := time.Unix(1_000_000, 0)
	read := func(after time.Duration, known bool, counts ...uint64) []float64 {
		s := &sample{at: t0.Add(after), counts: counts, known: []bool{known, known, known}}
		return append([]float64(nil), c.rates(s)...)
	}
	want := func(step string, got []float64, w ...float64) {
		t.Helper()
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s: rates %v, want %v", step, got, w)
				return
			}
		}
	}
	want("first reading", read(0, true, 5000, 100, 5100), -1, -1, -1)
	want("2 s later", read(2*time.Second, true, 5200, 100, 5300), 100, 0, 100)
	want("within a second: the same figures", read(2500*time.Millisecond, true, 9999, 9999, 9999), 100, 0, 100)
	want("hung within a second of a reading: unknown too", read(2900*time.Millisecond, false, 0, 0, 0), -1, -1, -1)
	want("hung: unknown", read(4*time.Second, false, 0, 0, 0), -1, -1, -1)
	want("answers again: a new series", read(6*time.Second, true, 5400, 100, 5500), -1, -1, -1)
	want("2 s on", read(8*time.Second, true, 5410, 120, 5530), 5, 10, 15)
	want("after a quiet spell of an hour", read(time.Hour, true, 9000, 120, 9000), -1, -1, -1)
	want("a recreated stream", read(time.Hour+2*time.Second, true, 10, 120, 9010), -1, 0, 5)
}
