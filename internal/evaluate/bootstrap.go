package evaluate

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Interval is a 95 % bootstrap interval: the 2.5th and 97.5th percentiles.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Comparison is one configuration's ROC AUC against the default
// configuration's, on the same bootstrap resamples (paired).
type Comparison struct {
	Diff     float64  `json:"diff"`     // ROC AUC minus the default's, on the whole set
	Interval Interval `json:"interval"` // 95 % paired bootstrap interval of Diff
}

// bootstrap fills each result's ROC AUC interval and, against the result
// at def, its paired comparison: every resample draws tasks with
// replacement (a task's pairs together: they share a task text and are not
// independent), and every configuration is measured on the same resample,
// so the difference's interval carries what the two have in common. The
// seed is fixed: a report is reproducible.
func bootstrap(rep *Report, rel []bool, groups [][]int, def, n int) {
	if n <= 0 || def < 0 || len(groups) < 2 {
		return
	}
	rng := rand.New(rand.NewPCG(1, 2))
	aucs := make([][]float64, len(rep.Results))
	diffs := make([][]float64, len(rep.Results))
	var idx []int
	scores := make([]float64, 0, len(rel))
	sub := make([]bool, 0, len(rel))
	cur := make([]float64, len(rep.Results))
	for done, tries := 0, 0; done < n && tries < 10*n; tries++ {
		idx = idx[:0]
		for range groups {
			idx = append(idx, groups[rng.IntN(len(groups))]...)
		}
		sub = sub[:0]
		pos := 0
		for _, i := range idx {
			sub = append(sub, rel[i])
			if rel[i] {
				pos++
			}
		}
		if pos == 0 || pos == len(sub) {
			continue // no ranking to measure in this resample
		}
		for c := range rep.Results {
			scores = scores[:0]
			for _, i := range idx {
				scores = append(scores, rep.Results[c].Scores[i])
			}
			cur[c] = ROCAUC(scores, sub)
		}
		for c := range rep.Results {
			aucs[c] = append(aucs[c], cur[c])
			diffs[c] = append(diffs[c], cur[c]-cur[def])
		}
		done++
	}
	base := rep.Results[def].Metrics.ROCAUC
	for c := range rep.Results {
		if len(aucs[c]) == 0 {
			return
		}
		r := &rep.Results[c]
		r.ROCAUCInterval = percentiles(aucs[c])
		r.VsDefault = &Comparison{Diff: r.Metrics.ROCAUC - base, Interval: *percentiles(diffs[c])}
	}
}

// percentiles returns the 2.5th and 97.5th percentiles of v (linear
// interpolation between order statistics).
func percentiles(v []float64) *Interval {
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(q float64) float64 {
		x := q * float64(len(s)-1)
		lo := int(math.Floor(x))
		hi := min(lo+1, len(s)-1)
		return s[lo] + (s[hi]-s[lo])*(x-float64(lo))
	}
	return &Interval{Low: at(0.025), High: at(0.975)}
}

// recommend names the configuration to switch to: of those whose paired
// interval against the default lies wholly above zero, the one with the
// highest ROC AUC; "" when none does (keep the default: a higher ROC AUC
// on this set may be chance).
func recommend(rep *Report) string {
	best := -1
	for i, r := range rep.Results {
		if r.VsDefault == nil || r.Config == rep.Default || !(r.VsDefault.Interval.Low > 0) {
			continue
		}
		if best < 0 || r.Metrics.ROCAUC > rep.Results[best].Metrics.ROCAUC {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return rep.Results[best].Config
}
