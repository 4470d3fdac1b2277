package evaluate

import (
	"math/rand/v2"
	"testing"
)

// A configuration far better than the default is recommended, one that is
// as good give or take chance is not; the intervals hold their estimates.
func TestBootstrapRecommendsOnlyAClearImprovement(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const tasks, per = 40, 4
	n := tasks * per
	rel := make([]bool, n)
	groups := make([][]int, tasks)
	noisy, perfect, twin := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		rel[i] = i%2 == 0
		groups[i/per] = append(groups[i/per], i)
		signal := 0.0
		if rel[i] {
			signal = 0.3
		}
		noisy[i] = signal + rng.Float64()
		perfect[i] = signal * 3
		twin[i] = noisy[i] + (rng.Float64()-0.5)*0.02 // the default, give or take a little
	}
	rep := &Report{Default: "default"}
	for _, c := range []struct {
		name   string
		scores []float64
	}{{"default", noisy}, {"perfect", perfect}, {"twin", twin}} {
		rep.Results = append(rep.Results, Result{Config: c.name, Scores: c.scores, Metrics: Metrics{ROCAUC: ROCAUC(c.scores, rel)}})
	}
	bootstrap(rep, rel, groups, 0, 1000)
	for _, r := range rep.Results {
		iv := r.ROCAUCInterval
		if iv == nil || r.VsDefault == nil || !(iv.Low <= r.Metrics.ROCAUC && r.Metrics.ROCAUC <= iv.High) {
			t.Fatalf("%s: AUC %v, interval %+v, vs default %+v", r.Config, r.Metrics.ROCAUC, iv, r.VsDefault)
		}
	}
	if d := rep.Results[0].VsDefault; d.Diff != 0 || d.Interval.Low != 0 || d.Interval.High != 0 {
		t.Errorf("the default against itself: %+v", d)
	}
	if p := rep.Results[1].VsDefault; !(p.Interval.Low > 0) {
		t.Errorf("perfect ranking against a noisy one: %+v", p)
	}
	if tw := rep.Results[2].VsDefault; !(tw.Interval.Low < 0 && tw.Interval.High > 0) {
		t.Errorf("a twin of the default: %+v, want an interval across zero", tw)
	}
	if got := recommend(rep); got != "perfect" {
		t.Errorf("recommended %q, want perfect", got)
	}
	rep.Results = []Result{rep.Results[0], rep.Results[2]}
	if got := recommend(rep); got != "" {
		t.Errorf("recommended %q over the default, by chance alone", got)
	}
}
