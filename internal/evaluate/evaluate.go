// Package evaluate measures how well scoring configurations rank relevant
// historical patterns above irrelevant ones, over a labelled set of
// task/pattern pairs: the weight A/B of the operations guide as a command.
//
// Every pair is scored in process by the same engine the worker runs
// (internal/scoring over the cache and an analysis source), once per
// configuration, and each configuration gets ROC AUC, average precision,
// precision@k per task, the best threshold's accuracy and F1, and the mean
// score of relevant and irrelevant pairs.
package evaluate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/internal/scoring"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// Pair is one labelled task/pattern pair.
type Pair struct {
	Task    string
	Pattern string
	Vector  float64 // the job's vector similarity, in [0, 1]
	// Label is the relevance: 0/1, or a grade (relevant when >= the
	// report's RelevantAt).
	Label float64
	// Characteristics steer adaptive weights; nil when the row has none.
	Characteristics *combiner.Characteristics
	Line            int // where the pair was read, for messages
}

// Config is one scoring configuration under evaluation.
type Config struct {
	Name     string
	Combiner combiner.Config
	Weights  similarity.Weights
	// Default marks the worker's default configuration, the one the
	// others are compared with.
	Default bool
}

// Env returns the worker's environment variables that select c.
func (c Config) Env() []string {
	return []string{
		fmt.Sprintf("HYBRID_VECTOR_WEIGHT=%g", c.Combiner.VectorWeight),
		fmt.Sprintf("HYBRID_PATTERN_WEIGHT=%g", c.Combiner.PatternWeight),
		fmt.Sprintf("HYBRID_ADAPTIVE=%t", c.Combiner.Adaptive),
		"HYBRID_STRATEGY=" + c.Combiner.Strategy.String(),
		fmt.Sprintf("HYBRID_MIN_WEIGHT=%g", c.Combiner.MinWeight),
		fmt.Sprintf("HYBRID_MAX_WEIGHT=%g", c.Combiner.MaxWeight),
		"PATTERN_SIMILARITY_WEIGHTS=" + c.Weights.String(),
	}
}

// Configs returns the standard grid: vector-only, pattern-only, fixed
// vector weights from 0.9 down to 0.2, and each adaptive strategy at the
// default weights — fourteen configurations.
func Configs() []Config {
	def := combiner.DefaultConfig()
	fixed := func(name string, vector float64) Config {
		c := def
		c.VectorWeight, c.PatternWeight = vector, math.Round((1-vector)*100)/100
		c.Adaptive, c.Strategy = false, combiner.Fixed
		return Config{Name: name, Combiner: c, Weights: similarity.DefaultWeights}
	}
	cs := []Config{fixed("vector-only", 1), fixed("pattern-only", 0)}
	for _, v := range []float64{0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2} {
		cs = append(cs, fixed(fmt.Sprintf("fixed %.1f/%.1f", v, 1-v), v))
	}
	for _, s := range []combiner.Strategy{combiner.Hybrid, combiner.ComplexityBased, combiner.DomainBased} {
		c := def
		c.Strategy = s
		name := "adaptive " + s.String()
		if s == combiner.Hybrid {
			name += " (default)"
		}
		cs = append(cs, Config{Name: name, Combiner: c, Weights: similarity.DefaultWeights, Default: s == combiner.Hybrid})
	}
	c := def
	c.VectorWeight, c.PatternWeight = 0.5, 0.5
	cs = append(cs, Config{Name: "adaptive hybrid 0.5/0.5", Combiner: c, Weights: similarity.DefaultWeights})
	return cs
}

// Options tune a run. Zero values take the defaults noted.
type Options struct {
	// RelevantAt is the label from which a pair counts as relevant; 0 means 1
	// (0/1 labels, or any positive grade when grades are integers).
	RelevantAt float64
	// K are the cut-offs of precision@k per task; nil means 1 and 3.
	K []int
	// OnScored is called after each pair is scored under one configuration
	// (progress); it may be nil.
	OnScored func()
	// Bootstrap is the number of resamples of the 95 % intervals; 0 means
	// 2000, a negative number none.
	Bootstrap int
}

// Metrics are one configuration's figures.
type Metrics struct {
	ROCAUC           float64         `json:"roc_auc"`
	AveragePrecision float64         `json:"average_precision"`
	PrecisionAtK     map[int]float64 `json:"precision_at_k"` // mean over tasks with a relevant pair
	Threshold        float64         `json:"best_threshold"` // scores >= it are called relevant
	Accuracy         float64         `json:"accuracy"`       // at Threshold
	F1               float64         `json:"f1"`             // at Threshold, the best F1 of any threshold
	MeanRelevant     float64         `json:"mean_relevant"`
	MeanIrrelevant   float64         `json:"mean_irrelevant"`
	Degraded         int             `json:"degraded"` // pairs scored vector-only because an analysis failed
}

// Result is one configuration's evaluation.
type Result struct {
	Config  string    `json:"config"`
	Env     []string  `json:"env"`
	Metrics Metrics   `json:"metrics"`
	ROC     []Point   `json:"roc"` // false-positive rate, true-positive rate
	Scores  []float64 `json:"-"`
	// ROCAUCInterval is the 95 % bootstrap interval of Metrics.ROCAUC, and
	// VsDefault the difference from the default configuration's with its
	// paired interval (nil without a bootstrap or a default).
	ROCAUCInterval *Interval   `json:"roc_auc_interval,omitempty"`
	VsDefault      *Comparison `json:"vs_default,omitempty"`
}

// Point is one point of a ROC curve.
type Point struct {
	FPR float64 `json:"fpr"`
	TPR float64 `json:"tpr"`
}

// Report is a whole evaluation.
type Report struct {
	Pairs      int      `json:"pairs"`
	Relevant   int      `json:"relevant"`
	Tasks      int      `json:"tasks"`
	RelevantAt float64  `json:"relevant_at"`
	Source     string   `json:"source"` // where analyses came from
	Results    []Result `json:"results"`
	// Best names the configuration with the highest ROC AUC (then average
	// precision, then the order of Configs).
	Best string `json:"best"`
	// Default names the default configuration; Recommended the one to
	// switch to, "" to keep the default: a configuration is recommended
	// only when the 95 % paired interval of its ROC AUC minus the
	// default's lies above zero.
	Default     string `json:"default"`
	Recommended string `json:"recommended"`
	Resamples   int    `json:"bootstrap_resamples"` // resamples of tasks behind the intervals
}

// BestResult returns the result Best names.
func (r *Report) BestResult() *Result {
	for i := range r.Results {
		if r.Results[i].Config == r.Best {
			return &r.Results[i]
		}
	}
	return nil
}

// ErrNoPairs is returned for a set with no pairs, or with only relevant or
// only irrelevant ones (no ranking can be measured).
var ErrNoPairs = errors.New("evaluate: need both relevant and irrelevant pairs")

// Run scores pairs under every configuration through features (the cache in
// front of an analysis source) and measures each.
func Run(ctx context.Context, features scoring.FeatureSource, pairs []Pair, configs []Config, opt Options) (*Report, error) {
	if opt.RelevantAt == 0 {
		opt.RelevantAt = 1
	}
	if opt.K == nil {
		opt.K = []int{1, 3}
	}
	rel := make([]bool, len(pairs))
	nrel := 0
	for i, p := range pairs {
		rel[i] = p.Label >= opt.RelevantAt
		if rel[i] {
			nrel++
		}
	}
	if nrel == 0 || nrel == len(pairs) {
		return nil, fmt.Errorf("%w: %d pairs, %d relevant", ErrNoPairs, len(pairs), nrel)
	}
	groups := byTask(pairs)
	rep := &Report{Pairs: len(pairs), Relevant: nrel, Tasks: len(groups), RelevantAt: opt.RelevantAt}
	for _, c := range configs {
		svc, err := scoring.New(features, scoring.Config{Combiner: c.Combiner, Weights: c.Weights}, nil)
		if err != nil {
			return nil, fmt.Errorf("configuration %q: %w", c.Name, err)
		}
		res := Result{Config: c.Name, Env: c.Env(), Scores: make([]float64, len(pairs))}
		for i := range pairs {
			p := &pairs[i]
			o, err := svc.Score(ctx, &scoring.Request{Task: p.Task, Pattern: p.Pattern, Vector: p.Vector, Characteristics: p.Characteristics})
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", p.Line, err)
			}
			if o.Status == scoring.Degraded {
				res.Metrics.Degraded++
			}
			res.Scores[i] = o.Hybrid
			if opt.OnScored != nil {
				opt.OnScored()
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Metrics = measure(res.Scores, rel, groups, opt.K, res.Metrics.Degraded)
		res.ROC = rocCurve(res.Scores, rel)
		rep.Results = append(rep.Results, res)
	}
	best := 0
	for i, r := range rep.Results {
		b := rep.Results[best].Metrics
		if r.Metrics.ROCAUC > b.ROCAUC || r.Metrics.ROCAUC == b.ROCAUC && r.Metrics.AveragePrecision > b.AveragePrecision {
			best = i
		}
	}
	if len(rep.Results) > 0 {
		rep.Best = rep.Results[best].Config
	}
	if def := slices.IndexFunc(configs, func(c Config) bool { return c.Default }); def >= 0 && opt.Bootstrap >= 0 {
		n := cmp.Or(opt.Bootstrap, 2000)
		rep.Default, rep.Resamples = configs[def].Name, n
		bootstrap(rep, rel, groups, def, n)
		rep.Recommended = recommend(rep)
	}
	return rep, nil
}

// byTask groups pair indexes by task text, in first-seen order.
func byTask(pairs []Pair) [][]int {
	at := map[string]int{}
	var groups [][]int
	for i, p := range pairs {
		g, ok := at[p.Task]
		if !ok {
			g = len(groups)
			at[p.Task] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

func measure(scores []float64, rel []bool, groups [][]int, ks []int, degraded int) Metrics {
	m := Metrics{ROCAUC: ROCAUC(scores, rel), AveragePrecision: AveragePrecision(scores, rel), PrecisionAtK: map[int]float64{}, Degraded: degraded}
	for _, k := range ks {
		m.PrecisionAtK[k] = meanPrecisionAtK(scores, rel, groups, k)
	}
	m.Threshold, m.Accuracy, m.F1 = BestThreshold(scores, rel)
	var sr, si float64
	var nr, ni int
	for i, s := range scores {
		if rel[i] {
			sr, nr = sr+s, nr+1
		} else {
			si, ni = si+s, ni+1
		}
	}
	m.MeanRelevant, m.MeanIrrelevant = sr/float64(nr), si/float64(ni)
	return m
}

// ROCAUC is the probability that a relevant pair scores above an
// irrelevant one, ties counting one half (the Mann-Whitney statistic).
func ROCAUC(scores []float64, rel []bool) float64 {
	idx := order(scores)
	// Ranks ascending, ties sharing their mean rank.
	var sumRel float64
	var nrel, nirr int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		// idx is descending; ascending ranks of positions i..j-1 are
		// n-j+1 .. n-i, whose mean is n - (i+j-1)/2.
		mean := float64(len(idx)) - float64(i+j-1)/2
		for _, k := range idx[i:j] {
			if rel[k] {
				sumRel += mean
				nrel++
			} else {
				nirr++
			}
		}
		i = j
	}
	if nrel == 0 || nirr == 0 {
		return math.NaN()
	}
	return (sumRel - float64(nrel)*float64(nrel+1)/2) / (float64(nrel) * float64(nirr))
}

// AveragePrecision is the mean of the precision at each relevant pair's
// rank, scores descending (ties in input order).
func AveragePrecision(scores []float64, rel []bool) float64 {
	var hits int
	var sum float64
	for r, k := range order(scores) {
		if rel[k] {
			hits++
			sum += float64(hits) / float64(r+1)
		}
	}
	if hits == 0 {
		return math.NaN()
	}
	return sum / float64(hits)
}

// BestThreshold returns the threshold (scores >= it are called relevant)
// with the best F1, and the accuracy and F1 there.
func BestThreshold(scores []float64, rel []bool) (threshold, accuracy, f1 float64) {
	pos, total := positives(rel), len(rel)
	sweep(scores, rel, func(t float64, tp, fp int) {
		prec, recall := float64(tp)/float64(tp+fp), float64(tp)/float64(pos)
		var f float64
		if tp > 0 {
			f = 2 * prec * recall / (prec + recall)
		}
		if f > f1 {
			tn := total - pos - fp
			threshold, f1, accuracy = t, f, float64(tp+tn)/float64(total)
		}
	})
	return threshold, accuracy, f1
}

// sweep lowers the threshold through every distinct score, highest first,
// and tells visit how many relevant (tp) and irrelevant (fp) pairs score at
// or above it.
func sweep(scores []float64, rel []bool, visit func(threshold float64, tp, fp int)) {
	idx := order(scores)
	tp, fp := 0, 0
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			if rel[idx[j]] {
				tp++
			} else {
				fp++
			}
			j++
		}
		visit(scores[idx[i]], tp, fp)
		i = j
	}
}

func positives(rel []bool) int {
	n := 0
	for _, r := range rel {
		if r {
			n++
		}
	}
	return n
}

func meanPrecisionAtK(scores []float64, rel []bool, groups [][]int, k int) float64 {
	var sum float64
	n := 0
	for _, g := range groups {
		has := slices.ContainsFunc(g, func(i int) bool { return rel[i] })
		if !has {
			continue
		}
		sub := make([]float64, len(g))
		for j, i := range g {
			sub[j] = scores[i]
		}
		top := order(sub)
		if len(top) > k {
			top = top[:k]
		}
		hits := 0
		for _, j := range top {
			if rel[g[j]] {
				hits++
			}
		}
		sum += float64(hits) / float64(min(k, len(g)))
		n++
	}
	return sum / float64(n)
}

// rocCurve returns the ROC curve's corners, from (0,0) to (1,1).
func rocCurve(scores []float64, rel []bool) []Point {
	pos := positives(rel)
	neg := len(rel) - pos
	pts := []Point{{0, 0}}
	sweep(scores, rel, func(_ float64, tp, fp int) {
		pts = append(pts, Point{FPR: float64(fp) / float64(neg), TPR: float64(tp) / float64(pos)})
	})
	return pts
}

// order returns indexes of scores, highest first, ties in input order.
func order(scores []float64) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	return idx
}
