package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
)

func TestRawResultTemplate(t *testing.T) {
	if n := len(rawResultFor("bench-raw-abcdef-12345")); n != rawResultBytes {
		t.Errorf("raw result is %d bytes, want %d (docs/operations.md#measuring-throughput)", n, rawResultBytes)
	}
	r := rawResultFor("lane-x-12345")
	var v struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(r, &v); err != nil || v.JobID != "lane-x-12345" {
		t.Fatalf("result %s: %v, job_id %q", r, err, v.JobID)
	}
}

func TestTexts(t *testing.T) {
	tasks, patterns := texts("task", taskTexts), texts("pattern", patternTexts)
	seen := map[string]bool{}
	for i := range 1000 {
		var w struct {
			Task    string `json:"task_description"`
			Pattern string `json:"historical_pattern_text"`
		}
		if err := json.Unmarshal(jobFor("l", i, tasks, patterns), &w); err != nil {
			t.Fatal(err)
		}
		if w.Task != tasks[i%50] || w.Pattern != patterns[i%37] {
			t.Fatalf("job %d: wrong texts", i)
		}
		seen[w.Task], seen[w.Pattern] = true, true
	}
	if len(seen) != 87 {
		t.Errorf("%d distinct texts, want 50+37", len(seen))
	}
}

func TestMedian(t *testing.T) {
	ts := []Throughput{{Jobs: 1, PerSec: 3}, {Jobs: 1, PerSec: 1}, {Jobs: 1, PerSec: 2}}
	if m := median(ts); m.PerSec != 2 {
		t.Errorf("median %v", m.PerSec)
	}
	if m := median(ts[:2]); m.PerSec != 2 {
		t.Errorf("median of two %v", m.PerSec)
	}
}

// The raw loop stores one result per job, with the job's id, and acks
// every job (the work-queue stream is empty afterwards).
func TestRawLoop(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := &run{o: Options{Jobs: 5000}, rep: &Report{}, url: ns.URL(), embedded: true}
	if b.nc, err = nats.Connect(b.url); err != nil {
		t.Fatal(err)
	}
	defer b.nc.Close()
	if b.js, err = jetstream.New(b.nc); err != nil {
		t.Fatal(err)
	}
	if err := b.ensureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	cleanup, err := b.rawSetup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	tp, err := b.rawOnce(ctx, 5000, texts("t", taskTexts), texts("p", patternTexts))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("raw loop, embedded server: %s", tp)
	if tp.Jobs != 5000 || tp.PerSec <= 0 {
		t.Errorf("throughput %+v", tp)
	}
	res, err := b.js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.CachedInfo().State.Msgs; n != 5000 {
		t.Errorf("%d results stored, want 5000", n)
	}
	// The acks of the last jobs may still be on their way.
	eventually.NoError(t, 10*time.Second, func() error {
		s, err := b.js.Stream(ctx, rawStream)
		if err != nil {
			return err
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			return fmt.Errorf("%d jobs left unacked", n)
		}
		return nil
	}, "every job of the raw loop acked")
}
