package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
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

func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		rates []float64
		want  float64
	}{
		{nil, 0},
		{[]float64{50000}, 0},
		{[]float64{60411, 53006, 43965}, 60411/43965.0 - 1},
		{[]float64{100, 100, 100}, 0},
		{[]float64{0, 100}, 0}, // a round that measured nothing says nothing
	} {
		ts := make([]Throughput, len(c.rates))
		for i, r := range c.rates {
			ts[i] = Throughput{Jobs: 1, PerSec: r}
		}
		if got := spreadOf(ts); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("spreadOf(%v) = %v, want %v", c.rates, got, c.want)
		}
	}
}

// The raw loop stores one result per job, with the job's id, and acks
// every job (the work-queue stream is empty afterwards).
func TestRawLoop(t *testing.T) {
	b, ctx := embeddedRun(t, Options{Jobs: 5000}, time.Minute)
	cleanup, err := b.rawSetup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	tp, err := b.rawOnce(ctx, 5000, texts("t", taskTexts), texts("p", patternTexts), withMsgID)
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

// The replies scenario alternates the two forms for at least nine rounds,
// every round answers each of its jobs, and the ratio is of the medians.
func TestRepliesRounds(t *testing.T) {
	var out strings.Builder
	b, ctx := embeddedRun(t, Options{Replies: 40, Rounds: 1, Out: &out}, 2*time.Minute)
	tasks, patterns := texts("t", taskTexts), texts("p", patternTexts)
	if err := b.replies(ctx, tasks, patterns, slices.Concat(tasks, patterns)); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	rp := b.rep.Replies
	if len(rp.OwnRounds) != repliesRounds || len(rp.SharedRounds) != repliesRounds {
		t.Fatalf("%d and %d rounds, want %d each", len(rp.OwnRounds), len(rp.SharedRounds), repliesRounds)
	}
	for _, r := range slices.Concat(rp.OwnRounds, rp.SharedRounds) {
		if r.Jobs != 40 || r.PerSec <= 0 {
			t.Errorf("round %+v: want 40 results", r)
		}
	}
	if want := median(rp.OwnRounds).PerSec / median(rp.SharedRounds).PerSec; rp.Ratio != want {
		t.Errorf("ratio %v, want the medians' %v", rp.Ratio, want)
	}
}

// The rounds alternate which of the raw loop and the worker goes first, so
// neither always meets the other's results in the stream; each round of
// each answers all its jobs and the ratio is of the medians.
func TestRoundsAlternateTheOrder(t *testing.T) {
	var out strings.Builder
	b, ctx := embeddedRun(t, Options{Baseline: true, Jobs: 300, Rounds: 3, Out: &out}, 2*time.Minute)
	tasks, patterns := texts("t", taskTexts), texts("p", patternTexts)
	if err := b.rounds(ctx, tasks, patterns, slices.Concat(tasks, patterns)); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	order := roundOrder(out.String())
	want := []string{"1 raw", "1 worker", "2 worker", "2 raw", "3 raw", "3 worker"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %q, want %q\n%s", order, want, out.String())
	}
	for _, r := range slices.Concat(b.rep.RawRounds, b.rep.WarmRounds) {
		if r.Jobs != 300 || r.PerSec <= 0 {
			t.Errorf("round %+v: want 300 results", r)
		}
	}
	if want := median(b.rep.WarmRounds).PerSec / median(b.rep.RawRounds).PerSec; b.rep.Ratio != want {
		t.Errorf("ratio %v, want the medians' %v", b.rep.Ratio, want)
	}
	if want := spreadOf(b.rep.RawRounds); b.rep.RawSpread != want {
		t.Errorf("raw spread %v, want %v", b.rep.RawSpread, want)
	}
	if noted := strings.Contains(out.String(), "the machine's\n      speed changed"); noted != (b.rep.RawSpread >= spreadNote) {
		t.Errorf("spread %.2f: noted %v\n%s", b.rep.RawSpread, noted, out.String())
	}
}

// With SameWrite the three designs rotate (each round starts one later),
// and the third stores each result the worker's way: on its job's own
// subject, which the server then refuses a second result for.
func TestSameWriteRotatesAndStoresOnePerJobSubject(t *testing.T) {
	var out strings.Builder
	b, ctx := embeddedRun(t, Options{Baseline: true, SameWrite: true, Jobs: 300, Rounds: 3, Out: &out}, 2*time.Minute)
	tasks, patterns := texts("t", taskTexts), texts("p", patternTexts)
	if err := b.rounds(ctx, tasks, patterns, slices.Concat(tasks, patterns)); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	order := roundOrder(out.String())
	want := []string{"1 raw", "1 worker", "1 same", "2 worker", "2 same", "2 raw", "3 same", "3 raw", "3 worker"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %q, want %q\n%s", order, want, out.String())
	}
	if len(b.rep.SameRounds) != 3 || b.rep.SameRatio != median(b.rep.WarmRounds).PerSec/median(b.rep.SameRounds).PerSec {
		t.Fatalf("same-write rounds %+v, ratio %v\n%s", b.rep.SameRounds, b.rep.SameRatio, out.String())
	}
	if !strings.Contains(out.String(), "ratio worker/same write: ") {
		t.Fatalf("no same-write ratio printed\n%s", out.String())
	}

	// The form itself: a second result for a job is refused whatever the
	// delay, as the worker's own is.
	m := perJobSubject.msg("lane-x", "job.1")
	if m.Subject != "scoring.results.lane-x.job~1" {
		t.Fatalf("subject %q", m.Subject)
	}
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	_, err := b.js.PublishMsg(ctx, m)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("second result: %v, want the server's wrong last sequence", err)
	}
}

// roundOrder lists the rounds a bench printed, as "<round> <design>".
func roundOrder(out string) []string {
	var order []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "round ") {
			continue
		}
		kind := "worker"
		switch {
		case strings.Contains(line, "raw JetStream loop"):
			kind = "raw"
		case strings.Contains(line, "raw loop, worker's write"):
			kind = "same"
		}
		order = append(order, line[len("round "):len("round 1")]+" "+kind)
	}
	return order
}

// embeddedRun returns a bench run of o (with Run's defaults) against an
// embedded server of its own, connected, with the topology's streams; all
// of it ends with t.
func embeddedRun(t *testing.T, o Options, timeout time.Duration) (*run, context.Context) {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	b := &run{o: o.withDefaults(), rep: &Report{}, url: ns.URL(), embedded: true, tmp: t.TempDir()}
	if b.nc, err = nats.Connect(b.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.nc.Close)
	if b.js, err = jetstream.New(b.nc); err != nil {
		t.Fatal(err)
	}
	if err := b.ensureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return b, ctx
}

// A server that does not answer, or a worker executable that cannot be
// found, is an error to report, not a panic (an error return used to leave
// the cleanup nil and then call it).
func TestSetupFailuresAreErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"unreachable server": {NATSURL: "nats://127.0.0.1:1", WorkerBin: "/bin/true"},
		"no worker":          {NATSURL: "nats://127.0.0.1:1", WorkerBin: ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			var out strings.Builder
			o.Out = &out
			_, err := Run(context.Background(), o)
			if err == nil {
				t.Fatalf("no error; printed %q", out.String())
			}
			t.Logf("error: %v", err)
		})
	}
}

// The cache size the bench reports is the one its worker processes get:
// the bench's own unless the environment sets one (an empty one too).
func TestCacheSizeFollowsTheEnvironment(t *testing.T) {
	b := &run{url: "nats://127.0.0.1:1"}
	given := func() string { // the last value wins, as in exec.Cmd
		v := ""
		for _, kv := range b.childEnv("") {
			if rest, ok := strings.CutPrefix(kv, "SEMANTIC_CACHE_MAX_SIZE="); ok {
				v = rest
			}
		}
		return v
	}
	for _, env := range []string{"", "1000"} {
		t.Setenv("SEMANTIC_CACHE_MAX_SIZE", env)
		want := env
		if env == "" {
			want = "200000"
		}
		if got := given(); got != want {
			t.Errorf("environment %q: the worker gets %q, want %q", env, got, want)
		}
		if got := cacheSize(); got != want {
			t.Errorf("environment %q: the bench reports %q, want %q", env, got, want)
		}
	}
}
