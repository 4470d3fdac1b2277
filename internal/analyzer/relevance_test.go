package analyzer_test

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// relevancePairs is the labelled set the analyzer is measured on
// (testdata/relevance/README.md at the repository root).
const (
	relevancePairs = "../../testdata/relevance/pairs.jsonl"
	// holdoutPairs was written without seeing the analyzer and is never
	// used to tune it: its floor only catches a change that makes the
	// analyzer generalise worse than it does now.
	holdoutPairs = "../../testdata/relevance/holdout.jsonl"
)

type labelledPair struct {
	Task    string  `json:"task"`
	Pattern string  `json:"pattern"`
	Vector  float64 `json:"vector_similarity"`
	Label   int     `json:"label"`
	Kind    string  `json:"kind"`
}

func readPairs(t *testing.T, path string) []labelledPair {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pairs []labelledPair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p labelledPair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %d: %v", len(pairs)+1, err)
		}
		pairs = append(pairs, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pairs
}

// rocAUC is the probability that a positive scores above a negative, ties
// counting half.
func rocAUC(scores []float64, labels []int) float64 {
	var pos, neg []float64
	for i, s := range scores {
		if labels[i] == 1 {
			pos = append(pos, s)
		} else {
			neg = append(neg, s)
		}
	}
	wins := 0.0
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				wins++
			case p == n:
				wins += 0.5
			}
		}
	}
	return wins / float64(len(pos)*len(neg))
}

func TestROCAUC(t *testing.T) {
	for _, tt := range []struct {
		scores []float64
		labels []int
		want   float64
	}{
		{[]float64{0.9, 0.8, 0.2, 0.1}, []int{1, 1, 0, 0}, 1},
		{[]float64{0.1, 0.2, 0.8, 0.9}, []int{1, 1, 0, 0}, 0},
		{[]float64{0.5, 0.5, 0.5, 0.5}, []int{1, 0, 1, 0}, 0.5},
		{[]float64{0.9, 0.3, 0.5, 0.1}, []int{1, 1, 0, 0}, 0.75},
	} {
		if got := rocAUC(tt.scores, tt.labels); got != tt.want {
			t.Errorf("rocAUC(%v, %v) = %v, want %v", tt.scores, tt.labels, got, tt.want)
		}
	}
}

// TestRelevanceSet measures how well the pattern similarity alone ranks
// relevant patterns above irrelevant ones on the labelled set.
func TestRelevanceSet(t *testing.T) {
	for _, set := range []struct {
		path               string
		minPairs           int
		minPattern, minHyb float64
	}{
		{relevancePairs, 320, 0.85, 0.90},
		{holdoutPairs, 120, 0.65, 0.75}, // measured 0.669 and 0.765 when the floor was set
	} {
		t.Run(set.path[len("../../testdata/relevance/"):], func(t *testing.T) {
			testRelevance(t, set.path, set.minPairs, set.minPattern, set.minHyb)
		})
	}
}

func testRelevance(t *testing.T, path string, minPairs int, minPattern, minHybrid float64) {
	pairs := readPairs(t, path)
	if len(pairs) < minPairs {
		t.Fatalf("%d pairs, want at least %d", len(pairs), minPairs)
	}
	features := map[string]*similarity.Features{}
	feat := func(text string) *similarity.Features {
		if f, ok := features[text]; ok {
			return f
		}
		f := analyzer.Analyze(text, "en", "pattern_matching").Features()
		features[text] = f
		return f
	}
	scores := make([]float64, len(pairs))
	hybrid := make([]float64, len(pairs))
	vector := make([]float64, len(pairs))
	labels := make([]int, len(pairs))
	byKind := map[string][]float64{}
	for i, p := range pairs {
		_, s := similarity.Compare(feat(p.Task), feat(p.Pattern), &similarity.DefaultWeights)
		scores[i], vector[i], labels[i] = s, p.Vector, p.Label
		hybrid[i] = 0.7*p.Vector + 0.3*s
		byKind[p.Kind] = append(byKind[p.Kind], s)
	}
	for _, k := range []string{"related", "paraphrase", "near_miss", "unrelated"} {
		t.Logf("%-10s n=%3d mean pattern score %.3f", k, len(byKind[k]), mean(byKind[k]))
	}
	auc, hyb := rocAUC(scores, labels), rocAUC(hybrid, labels)
	t.Logf("ROC AUC: pattern %.4f, vector %.4f, hybrid 0.7/0.3 %.4f", auc, rocAUC(vector, labels), hyb)
	if auc < minPattern {
		t.Errorf("pattern-only ROC AUC %.4f, want at least %.2f", auc, minPattern)
	}
	if hyb < minHybrid {
		t.Errorf("hybrid 0.7/0.3 ROC AUC %.4f, want at least %.2f", hyb, minHybrid)
	}
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// TestFiveTaskBlock checks the set's five-by-five block: each task ranks
// its own pattern first, and bread baking scores below every related pair.
func TestFiveTaskBlock(t *testing.T) {
	patterns := []string{
		"Implement user authentication",
		"Write unit tests for service",
		"Deploy to production environment",
		"Optimize database queries",
		"Build REST API endpoints",
	}
	tasks := []string{
		"Add login with OAuth2 and session tokens",
		"Create integration tests",
		"Release the service to the production cluster",
		"Speed up slow SQL queries on the orders table",
		"Expose an HTTP endpoint for creating orders",
	}
	const bread = "Bake sourdough bread with a rye starter"
	lowestRelated := 1.0
	for i, task := range tasks {
		scores := make([]float64, len(patterns))
		for j, p := range patterns {
			scores[j] = pattern(task, p)
		}
		t.Logf("%-48q %.3f", task, scores)
		best := slices.Index(scores, slices.Max(scores))
		if best != i || slices.Contains(slices.Delete(slices.Clone(scores), i, i+1), scores[i]) {
			t.Errorf("%q ranks %q first (%.3f), want %q (%.3f)", task, patterns[best], scores[best], patterns[i], scores[i])
		}
		lowestRelated = min(lowestRelated, scores[i])
	}
	for _, text := range append(slices.Clone(tasks), patterns...) {
		if s := pattern(text, bread); s >= lowestRelated {
			t.Errorf("%q against %q scores %.3f, not below the lowest related pair %.3f", text, bread, s, lowestRelated)
		}
	}
}

// analyze300 is a realistic task text of about 300 characters.
const analyze300 = "Implement OAuth2 login for the customer portal: add the authorization code flow with PKCE, " +
	"store refresh tokens encrypted in Postgres and expose a /session endpoint for the React frontend. " +
	"Write integration tests against the identity provider, then deploy behind a feature flag to the staging cluster first."

func BenchmarkAnalyze300(b *testing.B) {
	b.SetBytes(int64(len(analyze300)))
	b.ReportAllocs()
	for b.Loop() {
		analyzer.Analyze(analyze300, "en", "pattern_matching")
	}
}
