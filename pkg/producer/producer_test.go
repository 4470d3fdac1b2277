package producer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
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
	if s.Results != 20 || s.Published != 0 || s.Skipped != 20 || strings.Count(out.String(), "\n") != 20 {
		t.Fatalf("rerun summary %+v", s)
	}
}

// Without a reply subject (publisher batch's default) each job's result is
// stored once, on its own subject, and read from there: by a run that
// waits for it, by a rerun that published the jobs again before the worker
// came, and by a rerun that finds them all answered. Another producer's
// job on the same lane is not this run's.
func TestBatchWithoutReplySubjectStoresEachResultOnce(t *testing.T) {
	c, start := setup(t)
	start()() // the streams, then no worker
	ctx := context.Background()
	foreign := []byte(`{"job_id":"foreign-1","task_description":"Someone else's task","historical_pattern_text":"p","vector_similarity":0.5}`)
	if _, err := c.JS.PublishMsg(ctx, &nats.Msg{Subject: topology.JobsPrefix + "once", Data: foreign}); err != nil {
		t.Fatal(err)
	}
	run := func(input string, timeout time.Duration) (*producer.Summary, string, error) {
		t.Helper()
		src, _ := producer.NewSource(strings.NewReader(input), "jsonl")
		var out bytes.Buffer
		s, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "once", Out: &out, Timeout: timeout})
		return s, out.String(), err
	}
	// No worker yet: published, unanswered.
	if s, _, err := run(jsonl(30, 200), 300*time.Millisecond); !errors.Is(err, producer.ErrNoResult) || s.Published != 30 || s.Missing != 30 {
		t.Fatalf("without a worker: %v, %+v", err, s)
	}
	// With a worker, the same thirty and ten new: the thirty are found
	// stored, or (answered after their lookup) published again, dropped as
	// duplicates by the stream, and their results read as they are stored.
	start()
	all := jsonl(30, 200) + jsonl(10, 300)
	s, out, err := run(all, 30*time.Second)
	if err != nil || s.Published-s.Duplicates != 10 || s.Published+s.Skipped != 40 || s.Results != 40 || strings.Count(out, "\n") != 40 || strings.Contains(out, "foreign-1") {
		t.Fatalf("with a worker: %v, %+v\n%s", err, s, out)
	}
	st, err := c.JS.Stream(ctx, topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	eventually.NoError(t, 10*time.Second, func() error {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(topology.ResultsPrefix+"once.>"))
		if err != nil {
			return err
		}
		if info.State.Msgs != 41 || len(info.State.Subjects) != 41 {
			return fmt.Errorf("%d results stored on %d subjects, want 41 on 41 (40 jobs and the foreign one)", info.State.Msgs, len(info.State.Subjects))
		}
		return nil
	}, "one stored result a job")
	s, out, err = run(all, 30*time.Second)
	if err != nil || s.Published != 0 || s.Skipped != 40 || s.Results != 40 || strings.Count(out, "\n") != 40 {
		t.Fatalf("rerun: %v, %+v\n%s", err, s, out)
	}
}

// dlqCount is the number of dead letters on lane.
func dlqCount(t *testing.T, c *producer.Client, lane string) uint64 {
	t.Helper()
	st, err := c.JS.Stream(context.Background(), topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(topology.DLQPrefix+lane))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[topology.DLQPrefix+lane]
}

// A rerun publishes nothing already answered or dead-lettered: the jobs
// answered on the reply subject, a job whose result is stored on its own
// subject (job.ResultSubject), and a job dead-lettered before are all
// skipped, and the dead-letter stream does not grow.
// A job dead-lettered for its payload and corrected in the file since is
// published again by the rerun (a day later: past the duplicate window),
// while the unchanged bad job stays skipped.
func TestBatchRerunPublishesACorrectedJob(t *testing.T) {
	ns := workertest.NATS(t)
	c, _ := producer.NewClient(workertest.Connect(t, ns.URL()))
	workertest.Worker(t, ns.URL(), func(cfg *config.Config) { cfg.DuplicateWindow = time.Second })
	ctx := context.Background()
	run := func(input string) *producer.Summary {
		t.Helper()
		src, _ := producer.NewSource(strings.NewReader(input), "jsonl")
		s, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "fix", Out: io.Discard, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("%v, %+v", err, s)
		}
		return s
	}
	bad := `{"job_id":"fix-1","task_description":"","historical_pattern_text":"Build OAuth2 authentication","vector_similarity":0.8}` + "\n"
	if s := run(bad); s.ByStatus["rejected"] != 1 {
		t.Fatalf("first run %+v", s)
	}
	eventually.NoError(t, 10*time.Second, func() error {
		if n := dlqCount(t, c, "fix"); n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	}, "the rejected job dead-lettered")
	time.Sleep(1500 * time.Millisecond) // past the window
	if s := run(bad); s.Published != 0 || s.ByStatus["rejected"] != 1 {
		t.Fatalf("the unchanged bad job rerun (answered by its stored rejection): %+v", s)
	}
	fixed := strings.Replace(bad, `"task_description":""`, `"task_description":"Implement OAuth2 login"`, 1)
	if s := run(fixed); s.Published != 1 || s.ByStatus["scored"] != 1 {
		t.Fatalf("the corrected job rerun: %+v", s)
	}
	// A letter of a job that decoded names its content by digest: the
	// same content sent with another reply subject (another --run-id)
	// is not taken for a corrected job.
	conf := `{"job_id":"conf-1","task_description":"Rescore billing","historical_pattern_text":"Billing","vector_similarity":0.3}`
	decoded, _, err := job.Decode([]byte(conf), job.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	letter := &nats.Msg{Subject: topology.DLQPrefix + "fix", Data: []byte(conf), Header: nats.Header{
		"Hybridscore-Job-Id": {"conf-1"}, "Hybridscore-Reason": {"job_id_conflict"}, "Hybridscore-Digest": {job.Digest(decoded)},
		"Hybridscore-Payload-Hash": {"1234abcd"}}}
	if _, err := c.JS.PublishMsg(ctx, letter); err != nil {
		t.Fatal(err)
	}
	if s := run(conf + "\n"); s.Published != 0 || s.DeadLettered != 1 {
		t.Fatalf("a job dead-lettered as job_id_conflict, rerun: %+v", s)
	}
}

func TestBatchRerunPublishesNothingAnsweredOrDeadLettered(t *testing.T) {
	c, start := setup(t)
	start()
	ctx := context.Background()
	file := `{"job_id":"ok-1","task_description":"Implement OAuth2 login","historical_pattern_text":"Build OAuth2 authentication","vector_similarity":0.8}
{"job_id":"ok-2","task_description":"Add retries to the client","historical_pattern_text":"Retry with backoff","vector_similarity":0.6}
{"job_id":"bad-1","task_description":"","historical_pattern_text":"Build OAuth2 authentication","vector_similarity":0.8}
`
	run := func(input, reply string, opts producer.BatchOptions) (*producer.Summary, string) {
		t.Helper()
		src, _ := producer.NewSource(strings.NewReader(input), "jsonl")
		var out bytes.Buffer
		opts.Source, opts.Lane, opts.ReplySubject, opts.Out, opts.Timeout = src, "idem", reply, &out, 30*time.Second
		s, err := c.Batch(ctx, opts)
		if err != nil {
			t.Fatalf("%v, %+v", err, s)
		}
		return s, out.String()
	}
	s, _ := run(file, "scoring.results.idem.batch.run", producer.BatchOptions{})
	if s.Published != 3 || s.Results != 3 || s.ByStatus["rejected"] != 1 {
		t.Fatalf("first run %+v", s)
	}
	eventually.NoError(t, 10*time.Second, func() error {
		if n := dlqCount(t, c, "idem"); n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	}, "the rejected job dead-lettered")

	s, out := run(file, "scoring.results.idem.batch.run", producer.BatchOptions{})
	if s.Published != 0 || s.Skipped != 3 || s.Results != 3 || strings.Count(out, "\n") != 3 {
		t.Fatalf("rerun %+v\n%s", s, out)
	}

	// Elsewhere (another reply subject): a result stored on the job's own
	// subject, and dead letters (the rejected job's, and one written here
	// as the worker writes them) keep their jobs from being published.
	stored := `{"schema_version":1,"job_id":"own-1","status":"scored"}`
	ownJob, _, err := job.Decode([]byte(`{"job_id":"own-1","task_description":"a","historical_pattern_text":"b","vector_similarity":0.1}`), job.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	own := &nats.Msg{Subject: job.ResultSubject("idem", "own-1"), Data: []byte(stored), Header: nats.Header{"Hybridscore-Digest": []string{job.Digest(ownJob)}}}
	if _, err := c.JS.PublishMsg(ctx, own); err != nil {
		t.Fatal(err)
	}
	dl := &nats.Msg{Subject: topology.DLQPrefix + "idem", Data: []byte(`{"job_id":"dead-1"}`),
		Header: nats.Header{"Hybridscore-Job-Id": []string{"dead-1"}, "Hybridscore-Reason": []string{"max_deliveries"}}}
	if _, err := c.JS.PublishMsg(ctx, dl); err != nil {
		t.Fatal(err)
	}
	other := `{"job_id":"bad-1","task_description":"","historical_pattern_text":"Build OAuth2 authentication","vector_similarity":0.8}
{"job_id":"own-1","task_description":"a","historical_pattern_text":"b","vector_similarity":0.1}
{"job_id":"dead-1","task_description":"c","historical_pattern_text":"d","vector_similarity":0.2}
`
	// bad-1 is answered by its stored rejection: a copy of another reply
	// subject is other bytes than its dead letter's, but not corrected.
	s, out = run(other, "scoring.results.idem.batch.elsewhere", producer.BatchOptions{})
	if s.Published != 0 || s.DeadLettered != 1 || s.Skipped != 2 || !strings.Contains(out, stored) {
		t.Fatalf("elsewhere %+v\n%s", s, out)
	}
	if n := dlqCount(t, c, "idem"); n != 2 {
		t.Fatalf("%d dead letters after the reruns, want 2 (one real, one written by the test)", n)
	}
	var buf bytes.Buffer
	s.Write(&buf)
	if !strings.Contains(buf.String(), "skipped (dead-lettered before)") {
		t.Errorf("summary does not say what it skipped:\n%s", buf.String())
	}

	// A job whose id another job's content claimed already: the worker
	// dead-letters it (job_id_conflict) without a result, and the batch
	// stops waiting for it instead of running into its timeout, and says
	// the job_id was reused.
	claimed := &nats.Msg{Subject: job.ResultSubject("idem", "claimed-1"), Data: []byte(`{"job_id":"claimed-1","status":"scored"}`),
		Header: nats.Header{"Hybridscore-Digest": []string{"the digest of other content"}}}
	if _, err := c.JS.PublishMsg(ctx, claimed); err != nil {
		t.Fatal(err)
	}
	src, _ := producer.NewSource(strings.NewReader(`{"job_id":"claimed-1","task_description":"Other content","historical_pattern_text":"p","vector_similarity":0.3}`+"\n"), "jsonl")
	s, err = c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "idem", ReplySubject: "scoring.results.idem.batch.conflict", Out: io.Discard, Timeout: time.Minute})
	if !errors.Is(err, producer.ErrConflict) || s.Published != 1 || len(s.Conflicts) != 1 || s.Conflicts[0] != "claimed-1" || s.DeadLetteredNow != 0 || s.Missing != 0 {
		t.Fatalf("a job dead-lettered during the run: %v, %+v", err, s)
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
	// Each job is either answered already (skipped) or still waiting
	// (published again, and dropped by the stream as a duplicate).
	if err != nil || s.Results != 2 || s.Skipped+s.Published != 2 || s.Duplicates != s.Published {
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

// A job whose reply_subject the worker refuses is rejected, and its
// rejection cannot be sent there: Submit reads it where it is stored, at
// once, instead of waiting out its timeout.
func TestSubmitOfARefusedReplySubjectIsAnswered(t *testing.T) {
	c, start := setup(t)
	start()
	for i, subject := range []string{"scoring.jobs.x", "scoring.bulk.x", "a b", "a..b", "a.*"} {
		w := job.Wire{JobID: fmt.Sprintf("refused-%d", i), TaskDescription: "Implement OAuth2 login", HistoricalPatternText: "Build OAuth2 authentication",
			VectorSimilarity: 0.8, ReplySubject: subject}
		began := time.Now()
		r, err := c.Submit(context.Background(), "refused", w, 20*time.Second)
		var res job.Result
		if err != nil || json.Unmarshal(r, &res) != nil || res.Status != job.StatusRejected || res.Error == nil || res.Error.Code != job.CodeInvalidField {
			t.Fatalf("reply subject %s: %v %s", subject, err, r)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("reply subject %s: answered after %s", subject, took)
		}
	}
}

// The same job_id twice in one source, for other content: the second is a
// conflict (exit status 1), never skipped as answered by the first's
// result; the same job twice is one job.
func TestBatchSameIDTwiceInTheSource(t *testing.T) {
	c, start := setup(t)
	start()
	in := `{"job_id":"dd-1","task_description":"Implement A","historical_pattern_text":"Pattern A","vector_similarity":0.5}
{"job_id":"dd-1","task_description":"Implement A","historical_pattern_text":"Pattern A","vector_similarity":0.5}
{"job_id":"dd-2","task_description":"Implement B","historical_pattern_text":"Pattern B","vector_similarity":0.5}
{"job_id":"dd-2","task_description":"Implement B changed","historical_pattern_text":"Pattern B","vector_similarity":0.5}
`
	for run := 1; run <= 2; run++ {
		src, _ := producer.NewSource(strings.NewReader(in), "jsonl")
		s, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "dd", Out: io.Discard, Timeout: 10 * time.Second})
		if !errors.Is(err, producer.ErrConflict) || !slices.Equal(s.Conflicts, []string{"dd-2"}) {
			t.Fatalf("run %d: %v %+v", run, err, s)
		}
	}
}

// A job corrected after its rejection and rerun inside the jobs stream's
// duplicate window is published (under its content's own Nats-Msg-Id)
// and scored, not dropped behind its rejected copy and answered with that
// copy's rejection.
func TestBatchRerunsACorrectedJobInsideTheWindow(t *testing.T) {
	c, start := setup(t)
	start()
	run := func(input string) *producer.Summary {
		t.Helper()
		src, _ := producer.NewSource(strings.NewReader(input), "jsonl")
		s, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Lane: "fixnow", Out: io.Discard, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("%v, %+v", err, s)
		}
		return s
	}
	bad := `{"job_id":"fix-2","task_description":"","historical_pattern_text":"Build OAuth2 authentication","vector_similarity":0.8}` + "\n"
	if s := run(bad); s.ByStatus["rejected"] != 1 {
		t.Fatalf("first run %+v", s)
	}
	eventually.NoError(t, 10*time.Second, func() error {
		if n := dlqCount(t, c, "fixnow"); n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	}, "the rejected job dead-lettered")
	fixed := strings.Replace(bad, `"task_description":""`, `"task_description":"Implement OAuth2 login"`, 1)
	if s := run(fixed); s.Published != 1 || s.Duplicates != 0 || s.ByStatus["scored"] != 1 {
		t.Fatalf("the corrected job, rerun at once: %+v", s)
	}
	if s := run(fixed); s.Published != 0 || s.ByStatus["scored"] != 1 {
		t.Fatalf("the corrected job, rerun again: %+v", s)
	}
}

// A job is its lane and job_id: the same content (so the same derived id)
// submitted to two lanes at once is two jobs, each answered on its lane,
// not one dropped by the jobs stream as the other's duplicate. So is a
// batch of the same file to two lanes.
func TestSameJobIDOnTwoLanes(t *testing.T) {
	c, start := setup(t)
	start()
	ctx := context.Background()
	w := job.Wire{TaskDescription: "Rescore the billing pipeline", HistoricalPatternText: "Billing pipeline rework", VectorSimilarity: 0.4}
	for _, lane := range []string{"lane-a", "lane-b"} {
		r, err := c.Submit(ctx, lane, w, 10*time.Second)
		var res job.Result
		if err != nil || json.Unmarshal(r, &res) != nil || res.Status != job.StatusScored {
			t.Fatalf("submit on %s: %v %s", lane, err, r)
		}
		if _, err := c.Stored(ctx, lane, producer.DeriveJobID(w)); err != nil {
			t.Fatalf("stored on %s: %v", lane, err)
		}
	}
	for _, lane := range []string{"rescore-a", "rescore-b"} {
		var out bytes.Buffer
		src, err := producer.NewSource(strings.NewReader(jsonl(5, 0)), "jsonl")
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Batch(ctx, producer.BatchOptions{Source: src, Out: &out, Lane: lane, Timeout: 10 * time.Second})
		if err != nil || s.Results != 5 || s.Duplicates != 0 {
			t.Fatalf("batch on %s: %v %+v", lane, err, s)
		}
	}
}

// A job of a batch keeps the reply_subject it names: its pipeline's
// subscriber there gets its answer, while the batch reads it where it is
// stored.
func TestBatchKeepsEachJobsReplySubject(t *testing.T) {
	c, start := setup(t)
	start()
	sub, err := c.NC.SubscribeSync("pipeline.batch.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.NC.Flush()
	var in strings.Builder
	for i := range 5 {
		fmt.Fprintf(&in, `{"job_id":"own-%d","task_description":"task %d","historical_pattern_text":"pattern","vector_similarity":0.5,"reply_subject":"pipeline.batch.job%d"}`+"\n", i, i, i)
	}
	src, err := producer.NewSource(strings.NewReader(in.String()), "jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s, err := c.Batch(context.Background(), producer.BatchOptions{Source: src, Out: &out, Lane: "own", Timeout: 10 * time.Second})
	if err != nil || s.Results != 5 {
		t.Fatalf("batch: %v %+v", err, s)
	}
	got := map[string]bool{}
	for range 5 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("answers on the jobs' own reply subjects: %v (got %v)", err, got)
		}
		got[m.Subject] = true
	}
	if len(got) != 5 {
		t.Fatalf("answers on %v", got)
	}
}

// A publish while the job stream has no responder (being created here; a
// replicated stream electing a leader answers the same way) waits for it
// rather than failing after nats.go's default half second, and the job is
// stored once.
func TestPublishRidesOutAStreamWithoutResponder(t *testing.T) {
	c, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created := make(chan error, 1)
	time.AfterFunc(1500*time.Millisecond, func() {
		_, err := topology.Provision(context.Background(), c.JS, topology.Config{})
		created <- err
	})
	start := time.Now()
	dup, err := c.Publish(ctx, "norespond", job.Wire{JobID: "early-1", TaskDescription: "t", HistoricalPatternText: "p", VectorSimilarity: 0.5})
	if err != nil || dup {
		t.Fatalf("publish before the stream existed: dup %v, %v after %s", dup, err, time.Since(start).Round(time.Millisecond))
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	t.Logf("stored %s after the first attempt (the stream came at 1.5 s)", time.Since(start).Round(time.Millisecond))
	st, err := c.JS.Stream(ctx, topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d jobs stored, want 1", n)
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

// A stream that takes a job and never answers (here a plain subscriber
// where the jobs stream was) cannot hold a batch for ever: the job is given
// up after PubAckTimeout, and at once when ctx ends.
func TestBatchGivesUpAJobWithoutPubAck(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	if _, err := topology.Provision(ctx, c.JS, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := c.JS.DeleteStream(ctx, topology.JobsStream); err != nil {
		t.Fatal(err)
	}
	sub, err := c.NC.Subscribe(topology.JobsPrefix+"mute", func(*nats.Msg) {}) // takes, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	src, _ := producer.NewSource(strings.NewReader(jsonl(2, 700)), "jsonl")
	start := time.Now()
	_, err = c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "mute", Out: io.Discard, Timeout: time.Minute, PubAckTimeout: 300 * time.Millisecond})
	if !errors.Is(err, jetstream.ErrAsyncPublishTimeout) || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	src, _ = producer.NewSource(strings.NewReader(jsonl(2, 800)), "jsonl")
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start = time.Now()
	_, err = c.Batch(cctx, producer.BatchOptions{Source: src, Lane: "mute", Out: io.Discard, Timeout: time.Minute, PubAckTimeout: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no PubAck before the batch stopped") || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled: err %v after %s", err, time.Since(start))
	}
}

// A job_id reused for other content within the duplicate window is dropped
// by the jobs stream; the batch never takes the other job's answer as its
// own, whether that answer comes later (read where the run reads, or, for
// a run with a reply subject, looked up on the job's own subject) or was
// stored before, and says so at once instead of waiting out its timeout.
func TestBatchJobIDReusedWithinTheWindow(t *testing.T) {
	c, start := setup(t)
	ctx := context.Background()
	if _, err := topology.Provision(ctx, c.JS, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	other := func(id string) string {
		return `{"job_id":"` + id + `","task_description":"other task","historical_pattern_text":"other pattern","vector_similarity":0.9}` + "\n"
	}
	type outcome struct {
		s   *producer.Summary
		err error
		out string
	}
	run := func(id, reply string) chan outcome {
		first := job.Wire{JobID: id, TaskDescription: "first task", HistoricalPatternText: "first pattern", VectorSimilarity: 0.3}
		if _, err := c.Publish(ctx, "reuse", first); err != nil { // no worker yet: it waits
			t.Fatal(err)
		}
		done := make(chan outcome, 1)
		go func() {
			var out bytes.Buffer
			src, _ := producer.NewSource(strings.NewReader(other(id)), "jsonl")
			s, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "reuse", ReplySubject: reply, Out: &out, Timeout: time.Minute})
			done <- outcome{s, err, out.String()}
		}()
		return done
	}
	later := run("reused-1", "")
	laterReply := run("reused-2", "scoring.results.reuse.batch.r")
	// The batches publish within milliseconds; the first jobs are answered
	// only once the worker starts, after that.
	time.Sleep(time.Second)
	stop := start()
	defer stop()
	for name, done := range map[string]chan outcome{"answer read by the run": later, "answer looked up, run with a reply subject": laterReply} {
		select {
		case o := <-done:
			if !errors.Is(o.err, producer.ErrConflict) || len(o.s.Conflicts) != 1 || o.s.Results != 0 || o.out != "" {
				t.Fatalf("%s: %v %+v\n%s", name, o.err, o.s, o.out)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the batch waited for the other job's answer", name)
		}
	}
	// Again, the other job's answer now stored: refused at the PubAck.
	src, _ := producer.NewSource(strings.NewReader(other("reused-1")), "jsonl")
	begin := time.Now()
	var out bytes.Buffer
	s, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "reuse", Out: &out, Timeout: time.Minute})
	if !errors.Is(err, producer.ErrConflict) || len(s.Conflicts) != 1 || s.Results != 0 || out.Len() != 0 || time.Since(begin) > 10*time.Second {
		t.Fatalf("answer stored before: %v %+v after %s", err, s, time.Since(begin))
	}
	var summary bytes.Buffer
	s.Write(&summary)
	if !strings.Contains(summary.String(), "job_id reused for other content") {
		t.Fatalf("summary:\n%s", summary.String())
	}
}
