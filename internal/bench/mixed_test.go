package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/topology"
)

func TestBulkShare(t *testing.T) {
	if v, err := bulkShare(""); err != nil || v != config.Defaults().WorkerBulkShare || v != 0.1 {
		t.Errorf("empty: %v, %v; want the worker's default 0.1", v, err)
	}
	if v, err := bulkShare("0.25"); err != nil || v != 0.25 {
		t.Errorf("0.25: %v, %v", v, err)
	}
	for _, bad := range []string{"0", "1", "-0.1", "1.5", "x", "NaN", "0.1 "} {
		if _, err := bulkShare(bad); err == nil || !strings.Contains(err.Error(), "WORKER_BULK_SHARE") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

func TestBulkBacklogJobs(t *testing.T) {
	for _, c := range []struct {
		atLeast int
		rate    float64
		dur     time.Duration
		want    int
	}{
		{100000, 0, 20 * time.Second, 100000},           // rate unknown: the flag
		{100000, 2000, 20 * time.Second, 100000},        // 1.25 × 2000 × 22 = 55000 < the flag
		{100000, 10000, 20 * time.Second, 275000},       // 1.25 × 10000 × 22
		{100000, 14000, 20 * time.Second, 385000},       // 1.25 × 14000 × 22
		{100000, 20000, 20 * time.Second, 500000},       // 1.25 × 20000 × 22 = 550000: 5 × the flag
		{2000, 1000, 2 * time.Second, 5000},             // 1.25 × 1000 × 4
		{2000, 4000, 2 * time.Second, 10000},            // 1.25 × 4000 × 4 = 20000: 5 × the flag
		{100000, math.Inf(1), 20 * time.Second, 500000}, // nonsense rate: 5 × the flag
		{100000, math.NaN(), 20 * time.Second, 100000},  // the flag
		{50, 10, time.Duration(0), 50},                  // 1.25 × 10 × 2 = 25 < 50
		{10000, 1000, 500 * time.Millisecond, 10000},    // 1.25 × 1000 × 2.5 < the flag
		{10000, 10000, 500 * time.Millisecond, 31250},   // sub-second traffic
	} {
		if got := bulkBacklogJobs(c.atLeast, c.rate, c.dur); got != c.want {
			t.Errorf("bulkBacklogJobs(%d, %v, %s) = %d, want %d", c.atLeast, c.rate, c.dur, got, c.want)
		}
	}
}

func TestFractionAndRatio(t *testing.T) {
	if f := fraction(10, 90); f != 0.1 {
		t.Errorf("fraction(10, 90) = %v", f)
	}
	if f := fraction(0, 0); f != 0 {
		t.Errorf("fraction(0, 0) = %v", f)
	}
	if r := ratio(3, 2); r != 1.5 {
		t.Errorf("ratio(3, 2) = %v", r)
	}
	if r := ratio(3, 0); r != 0 {
		t.Errorf("ratio(3, 0) = %v", r)
	}
	if r := ratio(3, math.NaN()); r != 0 {
		t.Errorf("ratio(3, NaN) = %v", r)
	}
	if verdict(true) != "met" || verdict(false) != "NOT met" {
		t.Error("verdict")
	}
}

// A cold job's texts are its own: no two jobs of a lane, nor of two lanes,
// share one, and none is a warm text.
func TestColdJobs(t *testing.T) {
	if got := texts("p", 3); got[2] != text("p", 2) {
		t.Errorf("texts and text differ: %q, %q", got[2], text("p", 2))
	}
	seen := map[string]bool{}
	for _, tx := range texts("task", taskTexts) {
		seen[tx] = true
	}
	for _, tx := range texts("pattern", patternTexts) {
		seen[tx] = true
	}
	for _, lane := range []string{"bench-backlog-a", "bench-sat-b-a"} {
		for i := range 2000 {
			var w struct {
				ID      string `json:"job_id"`
				Task    string `json:"task_description"`
				Pattern string `json:"historical_pattern_text"`
			}
			if err := json.Unmarshal(coldJobFor(lane, i), &w); err != nil {
				t.Fatal(err)
			}
			if w.ID != lane+"-"+itoa(i) || len(w.Task) < 200 || len(w.Pattern) < 200 {
				t.Fatalf("job %d of %s: %+v", i, lane, w)
			}
			for _, tx := range []string{w.Task, w.Pattern} {
				if seen[tx] {
					t.Fatalf("job %d of %s: text %q seen before", i, lane, tx)
				}
				seen[tx] = true
			}
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestJobsStream(t *testing.T) {
	if jobsStream(topology.BulkPrefix) != topology.BulkStream || jobsStream(topology.JobsPrefix) != topology.JobsStream {
		t.Error("jobsStream")
	}
}

// The bench creates every stream of the topology that is missing, the bulk
// one included, and purgeJobs empties one lane of a jobs stream only.
func TestEnsureStreamsAndPurgeJobs(t *testing.T) {
	b, ctx := embeddedRun(t, Options{}, time.Minute)
	names := map[string]bool{}
	for _, sc := range (topology.Config{}).Streams() {
		names[sc.Name] = true
		if _, err := b.js.Stream(ctx, sc.Name); err != nil {
			t.Errorf("stream %s: %v", sc.Name, err)
		}
	}
	if !names[topology.BulkStream] {
		t.Fatalf("topology's streams lack %s", topology.BulkStream)
	}
	if err := b.ensureStreams(ctx); err != nil { // existing ones stay
		t.Fatal(err)
	}
	tasks, patterns := texts("t", taskTexts), texts("p", patternTexts)
	for _, lane := range []string{"keep", "drop"} {
		if err := b.publishLane(ctx, topology.BulkPrefix+lane, lane, 100, 2, tasks, patterns); err != nil {
			t.Fatal(err)
		}
	}
	b.purgeJobs(ctx, topology.BulkPrefix, "drop")
	s, err := b.js.Stream(ctx, topology.BulkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(topology.BulkPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	if k, d := info.State.Subjects[topology.BulkPrefix+"keep"], info.State.Subjects[topology.BulkPrefix+"drop"]; k != 100 || d != 0 {
		t.Errorf("after purging lane drop: %d jobs of keep, %d of drop; want 100, 0", k, d)
	}
}
