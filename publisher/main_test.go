package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hybridscore-publisher-test-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "publisher")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// --version answers as the worker's does; a command-line mistake gets a
// short usage line, not every flag of every command.
func TestVersionAndShortUsage(t *testing.T) {
	if out, err := run(t, "--version"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("--version: %v %q", err, out)
	}
	out, err := run(t, "batch", filepath.Join(t.TempDir(), "no-such-jobs.jsonl"), "--out", filepath.Join(t.TempDir(), "r.jsonl"))
	if err == nil || !strings.Contains(out, "no-such-jobs.jsonl") || !strings.Contains(out, `Run "publisher batch --help"`) || strings.Contains(out, "--otel-") {
		t.Errorf("a missing jobs file: %v\n%s", err, out)
	}
}

func TestDemo(t *testing.T) {
	out, err := run(t, "demo")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"demo-001  scored", "demo-007  rejected", "demo-008  expired", "results                     8", "missing                     0"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// A batch that cannot start (a lane that is no lane, a run id that is no
// token, no NATS) leaves the results file of the run before as it was;
// the first two are usage errors.
func TestBatchThatCannotStartKeepsTheResultsFile(t *testing.T) {
	dir := t.TempDir()
	jobs, outFile := filepath.Join(dir, "jobs.jsonl"), filepath.Join(dir, "results.jsonl")
	_ = os.WriteFile(jobs, []byte(`{"task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`+"\n"), 0o644)
	const before = `{"job_id":"kept","status":"scored"}` + "\n"
	_ = os.WriteFile(outFile, []byte(before), 0o644)
	for _, tc := range []struct {
		args []string
		exit int
	}{
		{[]string{"--lane", "a:b"}, 80},
		{[]string{"--run-id", "r.1"}, 80},
		{[]string{"--nats-url", "nats://127.0.0.1:1"}, 1},
	} {
		out, err := run(t, append([]string{"batch", jobs, "--out", outFile, "--no-progress"}, tc.args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.exit {
			t.Errorf("%v: %v, want exit %d\n%s", tc.args, err, tc.exit, out)
		}
		if got, _ := os.ReadFile(outFile); string(got) != before {
			t.Errorf("%v: the results file became %q", tc.args, got)
		}
	}
}

func TestBatchResumeAndTimeout(t *testing.T) {
	ns := workertest.NATS(t)
	_, stopWorker := workertest.Worker(t, ns.URL(), nil)
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs.jsonl")
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, `{"task_description":"task %d","historical_pattern_text":"pattern %d","vector_similarity":0.5}`+"\n", i, i%9)
	}
	_ = os.WriteFile(jobs, []byte(b.String()), 0o644)
	outFile := filepath.Join(dir, "results.jsonl")
	// Output to a pipe, not a terminal: plain progress lines, no carriage
	// returns or escape codes.
	out, err := run(t, "batch", jobs, "--nats-url", ns.URL(), "--out", outFile, "--rate", "2000")
	if err != nil || !strings.Contains(out, "results                     100") {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\r\x1b") || !strings.Contains(out, "results: 100 of 100") {
		t.Fatalf("progress on a pipe:\n%q", out)
	}
	out, err = run(t, "batch", jobs, "--nats-url", ns.URL(), "--out", outFile, "--resume", "--no-progress")
	if err != nil || !strings.Contains(out, "skipped (already answered)  100") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(outFile); strings.Count(string(got), "\n") != 100 {
		t.Fatalf("results file has %d lines", strings.Count(string(got), "\n"))
	}
	// A line that is no job: the others are published and answered, and
	// the exit status says the run did not publish everything it was given.
	_ = os.WriteFile(jobs, []byte(b.String()+`{"task_description":"x","historical_pattern_text":"p","vector_similarity":"0.5"}`+"\n"), 0o644)
	out, err = run(t, "batch", jobs, "--nats-url", ns.URL(), "--out", outFile, "--no-progress")
	if err == nil || !strings.Contains(out, "1 input lines of") || !strings.Contains(out, "skipped (already answered)  100") {
		t.Fatalf("an unreadable line: err %v\n%s", err, out)
	}
	stopWorker() // no worker now: new jobs time out and the exit status says so
	_ = os.WriteFile(jobs, []byte(`{"task_description":"never answered","historical_pattern_text":"p","vector_similarity":0.5}`+"\n"), 0o644)
	out, err = run(t, "batch", jobs, "--nats-url", ns.URL(), "--out", outFile, "--timeout", "300ms", "--no-progress")
	if err == nil || !strings.Contains(out, "missing                     1") {
		t.Fatalf("timeout: err %v\n%s", err, out)
	}
}

func TestBenchRuns(t *testing.T) {
	start := time.Now()
	out, err := run(t, "bench", "--jobs", "2000", "--cold-jobs", "200", "--baseline", "--rate", "200", "--rate-for", "1s",
		"--mixed", "--mixed-bulk", "2000", "--mixed-for", "2s")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"raw JetStream loop:", "cold cache:", "warm cache:", "concurrent (10 pub):", "ratio worker/raw:", "steady 200 jobs/s:", "raw loop, same rate: publish→result p50 ",
		"mixed, idle:          interactive 200 jobs/s for 2s: publish→result p50 ", "mixed, bulk backlog:  ", "cold bulk jobs first; interactive 200 jobs/s for 2s",
		"mixed, backlog start: ", "mixed, backlog end:   ", "consumer hybrid-scorer-bulk: ", "mixed, p99 ratio:     ",
		"round 3/3  worker, bulk alone        2000 results", "round 3/3  worker, interactive alone 2000 results", "mixed, bulk alone:    median ",
		"interactive alone, same rounds: median ", "mixed, bulk/interactive throughput: ",
		"mixed, share:         2000 interactive and 1000 bulk jobs queued (cold): at ", "WORKER_BULK_SHARE 0.10 (target ± 0.03: ", "mixed, share later:   bulk "} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s\n%s", time.Since(start).Round(time.Millisecond), out)
}

// Against a server of its own (here an embedded one of this test), the
// bench starts the worker executable next to the publisher's as a child
// process per scenario.
func TestBenchExternalWorker(t *testing.T) {
	worker := filepath.Join(filepath.Dir(bin), "worker")
	if out, err := exec.Command("go", "build", "-o", worker, "../worker").CombinedOutput(); err != nil {
		t.Fatalf("go build worker: %v\n%s", err, out)
	}
	ns := workertest.NATS(t)
	out, err := run(t, "bench", "--nats-url", ns.URL(), "--jobs", "2000", "--cold-jobs", "200", "--rounds", "2", "--baseline", "--rate", "200", "--rate-for", "1s")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"worker " + worker + ", a child process", "round 2/2  raw JetStream loop", "round 2/2  worker (warm cache)", "worker peak RSS",
		"raw JetStream loop:   median", "warm cache:           median", "ratio worker/raw:", "cold cache:", "concurrent (10 pub):", "steady 200 jobs/s:", "raw loop, same rate: publish→result p50 ", "resident memory:      worker peak"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	t.Log(out)
	// The soak, small: its resident-set lines are printed.
	out, err = run(t, "bench", "--nats-url", ns.URL(), "--soak", "3000")
	if err != nil || !strings.Contains(out, "soak:                 3000 jobs at") || !strings.Contains(out, "MB after 3000") {
		t.Fatalf("soak: %v\n%s", err, out)
	}
}

// The publisher takes the worker's authentication settings, and prints no
// secret when they are wrong.
func TestPublisherAuthenticatesAndRedacts(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*natsserver.User{{Username: "producer", Password: "pr0ducerS3cret"}}})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	defer ns.Shutdown()
	addr := ns.Addr().String()
	out, err := run(t, "submit", "--nats-url", "nats://producer:wrongS3cret@"+addr, "--task", "t", "--pattern", "p", "--vector", "0.5", "--timeout", "1s")
	if err == nil || strings.Contains(out, "wrongS3cret") || !strings.Contains(out, "xxxxx") {
		t.Fatalf("wrong password in the URL: %v\n%s", err, out)
	}
	// Right credentials as flags: connected, then no worker answers.
	out, err = run(t, "submit", "--nats-url", "nats://"+addr, "--nats-user", "producer", "--nats-password", "pr0ducerS3cret",
		"--task", "t", "--pattern", "p", "--vector", "0.5", "--timeout", "1s")
	if err == nil || strings.Contains(out, "Authorization") || strings.Contains(out, "pr0ducerS3cret") {
		t.Fatalf("with credentials: %v\n%s", err, out)
	}
}

// Dead letters are listed by reason and lane, and selected ones replayed:
// the worker answers them, job ids unchanged.
func TestDeadLetterListAndReplay(t *testing.T) {
	ns := workertest.NATS(t)
	workertest.Worker(t, ns.URL(), nil)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	for i, reason := range []string{"max_deliveries", "max_deliveries", "invalid_json"} {
		id := fmt.Sprintf("rl-%d", i)
		data := []byte(fmt.Sprintf(`{"job_id":%q,"task_description":"task %d","historical_pattern_text":"pattern","vector_similarity":0.5}`, id, i))
		if reason == "invalid_json" {
			data = []byte(`{"job_id":`)
		}
		m := &nats.Msg{Subject: "scoring.dlq.rl", Data: data, Header: nats.Header{}}
		m.Header.Set(consumer.HeaderReason, reason)
		m.Header.Set(consumer.HeaderJobID, id)
		m.Header.Set(consumer.HeaderSubject, "scoring.jobs.rl")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, "dlq", "list", "--nats-url", ns.URL(), "--ids")
	if err != nil || !hasRow(out, "max_deliveries rl 2") || !hasRow(out, "invalid_json rl 1") || !strings.Contains(out, "rl-1") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := run(t, "dlq", "replay", "--nats-url", ns.URL()); err == nil {
		t.Fatalf("replay without a selection ran:\n%s", out)
	}
	sub, _ := nc.SubscribeSync("scoring.results.rl.>")
	out, err = run(t, "dlq", "replay", "--nats-url", ns.URL(), "--reason", "max_deliveries", "--delete")
	if err != nil || !strings.Contains(out, "2 dead letters replayed") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for range 2 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("replayed jobs not answered: %v", err)
		}
		var r job.Result
		_ = json.Unmarshal(m.Data, &r)
		got[r.JobID] = r.Status == job.StatusScored
	}
	if !got["rl-0"] || !got["rl-1"] {
		t.Fatalf("results %v", got)
	}
	out, _ = run(t, "dlq", "list", "--nats-url", ns.URL())
	if strings.Contains(out, "max_deliveries") || !hasRow(out, "invalid_json rl 1") {
		t.Fatalf("after replay --delete:\n%s", out)
	}
}

// hasRow reports whether a line of a table holds exactly these fields.
func hasRow(out, fields string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == fields {
			return true
		}
	}
	return false
}

// The publisher works as deployments/nats/nats.conf's producer user, with
// a worker running as its worker user: submit and batch.
func TestPublisherUnderLeastPrivilege(t *testing.T) {
	t.Setenv("HYBRIDSCORE_WORKER_PASSWORD", "w-pw")
	t.Setenv("HYBRIDSCORE_PRODUCER_PASSWORD", "p-pw")
	t.Setenv("HYBRIDSCORE_OPERATOR_PASSWORD", "o-pw")
	o, err := natsserver.ProcessConfigFile("../deployments/nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.Port, o.HTTPPort, o.StoreDir, o.NoSigs = "127.0.0.1", -1, 0, t.TempDir(), true
	ns := workertest.NATSWith(t, o)
	// A short duplicate window: a job_id reused after it is the worker's to
	// find, and its dead letter the producer's to read.
	workertest.Worker(t, ns.ClientURL(), func(c *config.Config) {
		c.NATSUser, c.NATSPassword, c.DuplicateWindow = "worker", "w-pw", time.Second
	})
	auth := []string{"--nats-url", ns.ClientURL(), "--nats-user", "producer", "--nats-password", "p-pw"}
	out, err := run(t, append([]string{"submit", "--task", "Implement OAuth2 login", "--pattern", "Build OAuth2 authentication", "--vector", "0.8"}, auth...)...)
	if err != nil || !strings.Contains(out, `"status": "scored"`) {
		t.Fatalf("submit as producer: %v\n%s", err, out)
	}
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs.jsonl")
	_ = os.WriteFile(jobs, []byte(`{"task_description":"a","historical_pattern_text":"b","vector_similarity":0.5}`+"\n"+
		`{"task_description":"c","historical_pattern_text":"d","vector_similarity":0.5}`+"\n"), 0o644)
	out, err = run(t, append([]string{"batch", jobs, "--out", filepath.Join(dir, "out.jsonl"), "--timeout", "20s"}, auth...)...)
	if err != nil || !hasRow(out, "results 2") || strings.Contains(out, "dead letters not read") {
		t.Fatalf("batch as producer (the dead letters are the producer's to read): %v\n%s", err, out)
	}
	t.Logf("batch as producer:\n%s", out)

	// A job_id reused for other content: the worker dead-letters it as
	// job_id_conflict, and the producer, who may read dead letters, is told
	// so at once instead of waiting out its timeout.
	conflict := append([]string{"submit", "--job-id", "reused", "--task", "first", "--pattern", "p", "--vector", "0.5", "--timeout", "20s"}, auth...)
	if out, err := run(t, conflict...); err != nil {
		t.Fatalf("submit reused: %v\n%s", err, out)
	}
	conflict[4] = "second"
	time.Sleep(1500 * time.Millisecond) // past the window
	start := time.Now()
	out, err = run(t, conflict...)
	if err == nil || !strings.Contains(out, "other content") || time.Since(start) > 10*time.Second {
		t.Fatalf("conflicting submit as producer after %s: %v\n%s", time.Since(start).Round(time.Millisecond), err, out)
	}
	// dlq list reads too; deleting stays the operator's, and a refused
	// delete says so within seconds, not after the command's 5 minutes.
	if out, err := run(t, append([]string{"dlq", "list"}, auth...)...); err != nil || !strings.Contains(out, "job_id_conflict") {
		t.Fatalf("dlq list as producer: %v\n%s", err, out)
	}
	start = time.Now()
	out, err = run(t, append([]string{"dlq", "replay", "--reason", "job_id_conflict", "--delete"}, auth...)...)
	if err == nil || !strings.Contains(out, "may this NATS user delete dead letters?") || time.Since(start) > 30*time.Second {
		t.Fatalf("dlq replay --delete as producer, after %s: %v\n%s", time.Since(start).Round(time.Millisecond), err, out)
	}
}

// A malformed secret-bearing URL fails the command without printing the
// secret, not even the part a URL parser took for a port.
func TestPublisherMalformedURLsNeverPrintTheirSecret(t *testing.T) {
	for _, tt := range []struct{ env, name string }{
		{"NATS_URL=nats://producer:Sup3r#pw@127.0.0.1:4222", "NATS_URL"},
		{"NATS_URL=nats://producer:Sup3r%zz@127.0.0.1:4222", "NATS_URL"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=http://u:Sup3r#pw@collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT"},
	} {
		cmd := exec.Command(bin, "submit", "--task", "t", "--pattern", "p", "--vector", "0.5", "--timeout", "1s")
		cmd.Env = append(os.Environ(), tt.env)
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "Sup3r") || strings.Contains(string(out), "pw@") || !strings.Contains(string(out), tt.name) {
			t.Errorf("%s: err %v, output %q", tt.env, err, out)
		}
	}
}
