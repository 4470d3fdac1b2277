package metrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/metrics"
)

func series(t *testing.T, m *metrics.Metrics) int {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// A thousand lanes make no more than twice the series of ten.
func TestLaneLabelsAreBounded(t *testing.T) {
	run := func(lanes int) int {
		m := metrics.New()
		m.SetMaxLanes(10)
		for i := range lanes {
			lane := fmt.Sprintf("lane-%d", i)
			m.JobDone(consumer.Interactive, lane, "scored", time.Millisecond)
			m.Redelivered(lane)
			m.DeadLettered(lane, "invalid_json")
			m.Duplicate(lane, "claim")
		}
		return series(t, m)
	}
	ten, thousand := run(10), run(1000)
	t.Logf("series: %d with 10 lanes, %d with 1000", ten, thousand)
	if thousand > 2*ten {
		t.Fatalf("%d series for 1000 lanes, %d for 10", thousand, ten)
	}
}
