package evaluate_test

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/evaluate"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/source"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// Figures worked by hand: 3 relevant (r) and 3 irrelevant (i) pairs ranked
// r(0.9) i(0.8) r(0.7) r(0.7) i(0.7) i(0.1).
func TestMetricsByHand(t *testing.T) {
	scores := []float64{0.9, 0.8, 0.7, 0.7, 0.7, 0.1}
	rel := []bool{true, false, true, true, false, false}
	// Pairs (r, i) with r above i: 0.9 beats all 3; each 0.7 beats 0.1 and
	// ties 0.7 (one half): 2 × 1.5 = 3; total 6 of 9.
	if got := evaluate.ROCAUC(scores, rel); !near(got, 6.0/9) {
		t.Errorf("ROC AUC %v, want %v", got, 6.0/9)
	}
	// Precision at each relevant rank, ties in input order: 1/1, 2/3, 3/4.
	if got, want := evaluate.AveragePrecision(scores, rel), (1+2.0/3+3.0/4)/3; !near(got, want) {
		t.Errorf("AP %v, want %v", got, want)
	}
	// Threshold 0.9: P 1, R 1/3, F1 0.5. Threshold 0.7: P 3/5, R 1, F1 0.75,
	// accuracy (3 + 1)/6. Threshold 0.1: F1 2·0.5·1/1.5 = 2/3.
	th, acc, f1 := evaluate.BestThreshold(scores, rel)
	if th != 0.7 || !near(acc, 4.0/6) || !near(f1, 0.75) {
		t.Errorf("threshold %v accuracy %v F1 %v, want 0.7 0.667 0.75", th, acc, f1)
	}
	perfect := []bool{true, true, true, false, false, false}
	if got := evaluate.ROCAUC([]float64{3, 2, 1, 0, -1, -2}, perfect); got != 1 {
		t.Errorf("perfect ranking AUC %v", got)
	}
	if got := evaluate.ROCAUC([]float64{1, 1, 1, 1, 1, 1}, perfect); got != 0.5 {
		t.Errorf("all-tied AUC %v, want 0.5", got)
	}
}

func TestRead(t *testing.T) {
	jsonl := `{"task":"a","pattern":"b","vector_similarity":0.5,"label":1,"complexity":"complex"}

{"task_description":"c","historical_pattern_text":"d","vector_similarity":0,"relevance":0,"task_characteristics":{"feature_label":"auth"}}
`
	pairs, err := evaluate.Read(strings.NewReader(jsonl))
	if err != nil || len(pairs) != 2 {
		t.Fatalf("%d pairs, err %v", len(pairs), err)
	}
	if pairs[0].Characteristics.Complexity != "complex" || pairs[1].Task != "c" || pairs[1].Characteristics.FeatureLabel != "auth" || pairs[1].Line != 3 {
		t.Fatalf("pairs %+v %+v", pairs[0], pairs[1])
	}
	csv := "task,pattern,vector_similarity,label\n\"a, b\",c,0.25,2\n"
	pairs, err = evaluate.Read(strings.NewReader(csv))
	if err != nil || len(pairs) != 1 || pairs[0].Task != "a, b" || pairs[0].Label != 2 || pairs[0].Characteristics != nil {
		t.Fatalf("CSV: %+v, err %v", pairs, err)
	}
	for name, bad := range map[string]string{
		"vector out of range": `{"task":"a","pattern":"b","vector_similarity":1.5,"label":1}`,
		"no label":            `{"task":"a","pattern":"b","vector_similarity":0.5}`,
		"no pattern":          `{"task":"a","vector_similarity":0.5,"label":0}`,
		"not JSON":            `{"task":`,
		"label not a number":  "task,pattern,vector_similarity,label\na,b,0.5,yes\n",
	} {
		if _, err := evaluate.Read(strings.NewReader(bad)); !errors.Is(err, evaluate.ErrBadRow) {
			t.Errorf("%s: err %v, want ErrBadRow", name, err)
		}
	}
	if _, err := evaluate.Read(strings.NewReader("  \n")); !errors.Is(err, evaluate.ErrNoPairs) {
		t.Errorf("empty input: err %v", err)
	}
}

func readShipped(t *testing.T) []evaluate.Pair {
	f, err := os.Open("../../testdata/relevance/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pairs, err := evaluate.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return pairs
}

func run(t *testing.T, src source.Source, pairs []evaluate.Pair) *evaluate.Report {
	t.Helper()
	cache, err := semcache.New(context.Background(), semcache.Config{MaxSize: 2 * len(pairs)}, source.Loader{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	rep, err := evaluate.Run(context.Background(), cache, pairs, evaluate.Configs(), evaluate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The shipped set through the built-in analyzer and through a real
// langextract-compatible HTTP server serving the same analyzer: the same
// figures, every configuration measured, and the vector-only and
// pattern-only configurations equal to their inputs.
func TestShippedSetBothSources(t *testing.T) {
	pairs := readShipped(t)
	if len(pairs) < 300 {
		t.Fatalf("%d pairs, want at least 300", len(pairs))
	}
	local := run(t, source.Builtin, pairs)
	if len(local.Results) < 12 {
		t.Fatalf("%d configurations, want at least 12", len(local.Results))
	}
	srv := langextractd.New(langextractd.Faults{})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	client, err := langextract.New(langextract.Config{BaseURL: hs.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	remote := run(t, source.Guard(source.NewBreaker(5, time.Minute, nil), client), pairs)
	texts := map[string]bool{}
	for _, p := range pairs {
		texts[p.Task], texts[p.Pattern] = true, true
	}
	if srv.Calls() != int64(len(texts)) {
		t.Errorf("langextract saw %d requests for %d distinct texts: the cache should ask once per text", srv.Calls(), len(texts))
	}
	for i, r := range local.Results {
		if r.Metrics.Degraded != 0 || remote.Results[i].Metrics.Degraded != 0 {
			t.Errorf("%s: degraded pairs", r.Config)
		}
		if !near(r.Metrics.ROCAUC, remote.Results[i].Metrics.ROCAUC) {
			t.Errorf("%s: ROC AUC %v built-in, %v over HTTP", r.Config, r.Metrics.ROCAUC, remote.Results[i].Metrics.ROCAUC)
		}
		if r.Config == "vector-only" {
			for j, p := range pairs {
				if r.Scores[j] != p.Vector {
					t.Fatalf("vector-only scored line %d %v, want its vector %v", p.Line, r.Scores[j], p.Vector)
				}
			}
		}
	}
	if local.BestResult() == nil {
		t.Fatal("no best configuration")
	}
}
