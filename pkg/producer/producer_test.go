package producer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// setup runs a real NATS server; start runs an in-process worker with the
// built-in analyzer (until then jobs wait in the stream).
func setup(t *testing.T) (*producer.Client, func() (stop func())) {
	t.Helper()
	ns := workertest.NATS(t)
	nc := workertest.Connect(t, ns.URL())
	c, _ := producer.NewClient(nc)
	return c, func() func() {
		_, stop := workertest.Worker(t, ns.URL(), nil)
		return stop
	}
}

func jsonl(n int, from int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"task_description":"task %d uses OAuth2","historical_pattern_text":"pattern %d","vector_similarity":0.%d}`+"\n", i, i%5, i%10)
	}
	return b.String()
}

func TestBatchJSONLThenResume(t *testing.T) {
	c, start := setup(t)
	start()
	src, _ := producer.NewSource(strings.NewReader(jsonl(50, 0)+"not json\n"), "jsonl")
	var out bytes.Buffer
	invalid := 0
	s, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "b", ReplySubject: "scoring.results.b.batch.run1", Out: &out,
		Timeout: 30 * time.Second, OnInvalid: func(error) { invalid++ }})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if s.Published != 50 || s.Results != 50 || len(lines) != 50 || s.Invalid != 1 || invalid != 1 || s.ByStatus["scored"] != 50 {
		t.Fatalf("summary %+v, %d lines", s, len(lines))
	}
	ids := map[string]bool{}
	for _, l := range lines {
		var r job.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		ids[r.JobID] = true
	}
	// Resume with ten more jobs: the fifty answered are skipped.
	answered := make([]string, 0, len(ids))
	for id := range ids {
		answered = append(answered, id)
	}
	src, _ = producer.NewSource(strings.NewReader(jsonl(60, 0)), "jsonl")
	var more bytes.Buffer
	s, err = c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "b", ReplySubject: "scoring.results.b.batch.run1", Out: &more,
		Answered: answered, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Skipped != 50 || s.Published != 10 || s.Results != 10 || strings.Count(more.String(), "\n") != 10 {
		t.Fatalf("resume summary %+v", s)
	}
	var buf bytes.Buffer
	s.Write(&buf)
	for _, want := range []string{"results", "status", "scored", "cache (per text)", "p50", "p99"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary table lacks %q:\n%s", want, buf.String())
		}
	}
}

// A rerun of a file whose jobs were published earlier (and deduplicated now)
// still collects their results from the result stream.
func TestBatchRecoversResultsOfAnEarlierRun(t *testing.T) {
	c, start := setup(t)
	start()
	src, _ := producer.NewSource(strings.NewReader(jsonl(20, 100)), "jsonl")
	if _, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "r", ReplySubject: "scoring.results.r.batch.x", Out: io.Discard, Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	src, _ = producer.NewSource(strings.NewReader(jsonl(20, 100)), "jsonl")
	var out bytes.Buffer
	s, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "r", ReplySubject: "scoring.results.r.batch.x", Out: &out, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Results != 20 || strings.Count(out.String(), "\n") != 20 {
		t.Fatalf("rerun summary %+v", s)
	}
}

func TestBatchCSVAndTimeout(t *testing.T) {
	c, start := setup(t)
	csv := "job_id,task_description,historical_pattern_text,vector_similarity,complexity,feature_label\n" +
		"c-1,\"Implement OAuth2, with JWT\",Build OAuth2 login,0.8,complex,auth\n" +
		"c-2,Bake bread,Bake sourdough,0.2,,\n"
	src, err := producer.NewSource(strings.NewReader(csv), "csv")
	if err != nil {
		t.Fatal(err)
	}
	// No worker yet (streams provisioned as an operator would): the batch
	// times out with ErrNoResult.
	if _, err := topology.Provision(context.Background(), c.JS, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "csv", ReplySubject: "scoring.results.csv.batch.t", Out: io.Discard, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, producer.ErrNoResult) || s.Missing != 2 {
		t.Fatalf("without a worker: %v, %+v", err, s)
	}
	start()
	src, _ = producer.NewSource(strings.NewReader(csv), "csv")
	var out bytes.Buffer
	s, err = c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "csv", ReplySubject: "scoring.results.csv.batch.t", Out: &out, Timeout: 30 * time.Second})
	if err != nil || s.Results != 2 || s.Duplicates != 2 {
		t.Fatalf("%v %+v", err, s)
	}
	if !strings.Contains(out.String(), `"job_id":"c-1"`) || !strings.Contains(out.String(), `"adjustment_reason":"complexity+domain"`) {
		t.Fatalf("results %s", out.String())
	}
}

func TestSubmit(t *testing.T) {
	c, start := setup(t)
	start()
	w := job.Wire{TaskDescription: "Implement OAuth2 authentication with JWT tokens", HistoricalPatternText: "Build user authentication using OAuth2 protocol", VectorSimilarity: 0.85}
	r, err := c.Submit(context.Background(), "default", w, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var res job.Result
	_ = json.Unmarshal(r, &res)
	if res.Status != job.StatusScored || res.JobID != producer.DeriveJobID(w) {
		t.Fatalf("result %s", r)
	}
	// Submitting the same job again finds the stored result.
	r2, err := c.Submit(context.Background(), "default", w, 10*time.Second)
	if err != nil || !bytes.Equal(r, r2) {
		t.Fatalf("resubmit: %v\n%s\n%s", err, r, r2)
	}
}

func TestDeriveJobIDIsContentBased(t *testing.T) {
	a := job.Wire{TaskDescription: "a", HistoricalPatternText: "b", VectorSimilarity: 0.5}
	b := a
	b.VectorSimilarity = 0.6
	if producer.DeriveJobID(a) != producer.DeriveJobID(a) || producer.DeriveJobID(a) == producer.DeriveJobID(b) || !job.ValidJobID(producer.DeriveJobID(a)) {
		t.Fatal("derived ids not stable, distinct and valid")
	}
}

func TestBatchStopsWhenCancelledWhileBlocked(t *testing.T) {
	c, _ := setup(t)
	if _, err := topology.Provision(context.Background(), c.JS, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	src, _ := producer.NewSource(strings.NewReader(jsonl(10, 500)), "jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// No worker: the second job blocks on MaxPending until ctx ends.
	_, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "blocked", ReplySubject: "scoring.results.blocked.batch.x", Out: io.Discard, MaxPending: 1, Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}
