package capacity

import (
	"strings"
	"testing"
)

// A worker count is drawn from what workers did only when they were
// saturated (a backlog still there at the end of the window). From an
// unsaturated window there is none unless asked, and then it is flagged
// as an upper bound from a per-worker floor.
func TestNoWorkerCountFromAnUnsaturatedWindowUnlessAsked(t *testing.T) {
	per := 75.0
	report := func(bulkLast float64, asked bool) (*Report, string) {
		r := &Report{
			Classes: []Class{{Name: "interactive", Backlog: &Backlog{}}, {Name: "bulk", Backlog: &Backlog{Max: 4580, Last: bulkLast}}},
			Workers: &Workers{Now: 3, PerWorker: &per, AtPeak: 3},
		}
		r.Plan = plan(r, Options{TargetRate: 2000, Headroom: 1.3, SizeUnsaturated: asked})
		r.Recommendations = recommend(r, Thresholds{}.withDefaults())
		var text strings.Builder
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		return r, strings.Join(r.Recommendations, "\n") + "\n" + text.String()
	}

	r, out := report(0, false)
	if r.Plan.Workers != 0 || !r.Plan.Unsaturated || strings.Contains(out, "scale out") || strings.Contains(out, "35") ||
		!strings.Contains(out, "no sizing: no consumer backlog lasted") || !strings.Contains(out, "--size-unsaturated") {
		t.Fatalf("unsaturated, not asked: plan %+v\n%s", r.Plan, out)
	}

	r, out = report(0, true)
	if r.Plan.Workers != 35 || !r.Plan.Unsaturated || !strings.Contains(out, "scale out: 3 → 35 workers") ||
		!strings.Contains(out, "a floor") || !strings.Contains(out, "35 is an upper bound") || !strings.Contains(out, "at most 35") {
		t.Fatalf("unsaturated, asked: plan %+v\n%s", r.Plan, out)
	}

	r, out = report(1200, false)
	if r.Plan.Workers != 35 || r.Plan.Unsaturated || !strings.Contains(out, "scale out: 3 → 35 workers") || strings.Contains(out, "floor") {
		t.Fatalf("saturated: plan %+v\n%s", r.Plan, out)
	}
}
