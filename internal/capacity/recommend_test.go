package capacity

import (
	"strings"
	"testing"
)

// Scaling out on what workers did is only sound when they were saturated
// (a backlog still there at the end of the window); otherwise the report
// says the per-worker figure is a floor.
func TestScaleOutCaveatUnlessSaturated(t *testing.T) {
	per := 75.0
	report := func(bulkLast float64) *Report {
		return &Report{
			Classes: []Class{{Name: "interactive", Backlog: &Backlog{}}, {Name: "bulk", Backlog: &Backlog{Max: 4580, Last: bulkLast}}},
			Workers: &Workers{Now: 3, PerWorker: &per, AtPeak: 3},
			Plan:    &Plan{TargetRate: 2000, Headroom: 1.3, Workers: WorkersFor(2000, 1.3, per)},
		}
	}
	lines := strings.Join(recommend(report(0), Thresholds{}.withDefaults()), "\n")
	if !strings.Contains(lines, "scale out: 3 → 35 workers") || !strings.Contains(lines, "the figure per worker is a floor") {
		t.Fatalf("backlog drained, recommendations:\n%s", lines)
	}
	lines = strings.Join(recommend(report(1200), Thresholds{}.withDefaults()), "\n")
	if strings.Contains(lines, "is a floor") {
		t.Fatalf("backlog left at the end, yet the caveat:\n%s", lines)
	}
}
