package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hybridscore-worker-test-")
	if err != nil {
		panic(err)
	}
	workerBin = filepath.Join(dir, "worker")
	if out, err := exec.Command("go", "build", "-o", workerBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	addr string             // the HTTP address the worker bound
	out  *workertest.Output // its stdout and stderr, read as it writes them
	done chan error         // the exit, once the output has ended too
}

// startWorker runs the worker binary against natsURL with extra env (a
// later setting of a variable wins) and waits until it is ready. Its HTTP
// port is its own choice (HTTP_ADDR=127.0.0.1:0), read from the "HTTP
// listening" line it logs at info: env must not raise LOG_LEVEL above info.
func startWorker(t *testing.T, natsURL, leURL string, env ...string) *proc {
	t.Helper()
	const startTimeout = 15 * time.Second
	start := time.Now()
	p := &proc{done: make(chan error, 1)}
	p.cmd = exec.Command(workerBin)
	p.cmd.Env = append(os.Environ(), "NATS_URL="+natsURL, "HTTP_ADDR=127.0.0.1:0", "LANGEXTRACT_URL="+leURL, "LOG_LEVEL=info",
		"ACK_WAIT=2s", "DUPLICATE_WINDOW=2m", "WORKER_CONCURRENCY=8", "WORKER_DRAIN_TIMEOUT=10s")
	p.cmd.Env = append(p.cmd.Env, env...)
	out, err := workertest.StartProcess(p.cmd)
	if err != nil {
		t.Fatal(err)
	}
	p.out = out
	go func() {
		err := p.cmd.Wait()
		<-out.Done()
		p.done <- err
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("worker %s output:\n%s", p.addr, p.out.String())
		}
	})
	line := out.WaitLine(t, startTimeout, `"msg":"HTTP listening"`)
	var listening struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal([]byte(line), &listening); err != nil || listening.Addr == "" {
		t.Fatalf("no address in the worker's line %q: %v", line, err)
	}
	p.addr = listening.Addr
	eventually.NoError(t, startTimeout-time.Since(start), func() error {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d", resp.StatusCode)
		}
		return nil
	}, "worker at %s ready", p.addr)
	return p
}

type cluster struct {
	t      *testing.T
	ns     *natsembed.Server
	le     *langextractd.Server
	leURL  string
	client *producer.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	le := langextractd.New(langextractd.Faults{Latency: 3 * time.Millisecond})
	hs := httptest.NewServer(le)
	t.Cleanup(hs.Close)
	nc := workertest.Connect(t, ns.URL())
	c, _ := producer.NewClient(nc)
	return &cluster{t: t, ns: ns, le: le, leURL: hs.URL, client: c}
}

func (c *cluster) publishBatch(lane string, n int) []string {
	return c.publish(topology.JobsPrefix, lane, n)
}

// publishBulk publishes n bulk jobs (scoring.bulk.<lane>).
func (c *cluster) publishBulk(lane string, n int) []string {
	return c.publish(topology.BulkPrefix, lane, n)
}

func (c *cluster) publish(prefix, lane string, n int) []string {
	c.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d", lane, i)
		w := job.Wire{JobID: ids[i], TaskDescription: fmt.Sprintf("task %d implements OAuth2 login", i), HistoricalPatternText: fmt.Sprintf("pattern %d", i%13), VectorSimilarity: 0.5}
		data, _ := json.Marshal(w)
		if _, err := c.client.JS.PublishMsg(context.Background(), &nats.Msg{Subject: prefix + lane, Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{w.JobID}}}); err != nil {
			c.t.Fatal(err)
		}
	}
	return ids
}

// storedCount is the number of results of a lane in SCORING_RESULTS, one
// cheap request: what waiting polls.
func (c *cluster) storedCount(lane string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.client.JS.Stream(ctx, topology.ResultsStream)
	if err != nil {
		c.t.Fatal(err)
	}
	// One subject per job: the count of a filter is the ephemeral
	// consumer's pending count.
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.ResultsPrefix + lane + ".>"}})
	if err != nil {
		c.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return int(info.NumPending)
}

// storedResults reads every stored result of a lane: job id → results.
func (c *cluster) storedResults(lane string) map[string][]job.Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := c.client.JS.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.ResultsPrefix + lane + ".>"}})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string][]job.Result{}
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			c.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var r job.Result
			_ = json.Unmarshal(m.Data(), &r)
			out[r.JobID] = append(out[r.JobID], r)
		}
		if n == 0 {
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				c.t.Fatal(err)
			}
			return out
		}
	}
}

// waitAll waits until the lane holds as many results as ids, then checks
// that each id has exactly one. Fewer would never pass: with as many
// stored, a missing result means another was stored twice.
func (c *cluster) waitAll(lane string, ids []string, timeout time.Duration) map[string][]job.Result {
	c.t.Helper()
	eventually.NoError(c.t, timeout, func() error {
		if n := c.storedCount(lane); n < len(ids) {
			return fmt.Errorf("%d results stored for %d jobs", n, len(ids))
		}
		return nil
	}, "a result for every job of lane %s", lane)
	got := c.storedResults(lane)
	for _, id := range ids {
		if len(got[id]) != 1 {
			c.t.Fatalf("%s has %d stored results", id, len(got[id]))
		}
	}
	if len(got) != len(ids) {
		c.t.Fatalf("%d stored results for %d jobs", len(got), len(ids))
	}
	return got
}

// waitSome waits until the lane holds at least n results.
func (c *cluster) waitSome(lane string, n int) {
	c.t.Helper()
	eventually.True(c.t, 30*time.Second, func() bool { return c.storedCount(lane) >= n }, "%d results stored on lane %s", n, lane)
}

func TestThreeWorkersShareABatch(t *testing.T) {
	c := newCluster(t)
	for range 3 {
		startWorker(t, c.ns.URL(), c.leURL)
	}
	ids := c.publishBatch("share", 600)
	got := c.waitAll("share", ids, 60*time.Second)
	byWorker := map[string]int{}
	for _, rs := range got {
		byWorker[rs[0].WorkerID]++
		if rs[0].Status != job.StatusScored {
			t.Fatalf("result %+v", rs[0])
		}
	}
	t.Logf("jobs per worker: %v", byWorker)
	if len(byWorker) < 2 {
		t.Fatalf("one worker did everything: %v", byWorker)
	}
}

// Two worker processes share both classes: every job answered once, and
// each class served by both.
func TestTwoWorkersShareBothClasses(t *testing.T) {
	c := newCluster(t)
	for range 2 {
		startWorker(t, c.ns.URL(), c.leURL)
	}
	bulk := c.publishBulk("mixed-bulk", 300)
	live := c.publishBatch("mixed-live", 300)
	for lane, ids := range map[string][]string{"mixed-bulk": bulk, "mixed-live": live} {
		got := c.waitAll(lane, ids, 60*time.Second)
		byWorker := map[string]int{}
		for _, rs := range got {
			byWorker[rs[0].WorkerID]++
		}
		t.Logf("%s: jobs per worker %v", lane, byWorker)
		if len(byWorker) < 2 {
			t.Fatalf("%s: one worker did everything: %v", lane, byWorker)
		}
	}
}

// kill -9 in the middle of a batch, interactive or bulk: every job still
// ends with exactly one stored result.
func TestKill9MidBatchLosesNothing(t *testing.T) {
	for _, class := range []struct{ name, prefix string }{{"interactive", topology.JobsPrefix}, {"bulk", topology.BulkPrefix}} {
		t.Run(class.name, func(t *testing.T) {
			c := newCluster(t)
			victim := startWorker(t, c.ns.URL(), c.leURL)
			startWorker(t, c.ns.URL(), c.leURL)
			c.le.SetFaults(langextractd.Faults{Latency: 15 * time.Millisecond})
			lane := "kill-" + class.name
			ids := c.publish(class.prefix, lane, 400)
			c.waitSome(lane, 60)
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-victim.done
			victim.done <- nil // for cleanup
			got := c.waitAll(lane, ids, 90*time.Second)
			redelivered := 0
			for _, rs := range got {
				if rs[0].DeliveryAttempt > 1 {
					redelivered++
				}
			}
			t.Logf("after kill -9: %d jobs, each with one stored result; %d answered on a redelivery", len(got), redelivered)
		})
	}
}

func TestSIGTERMMidBatchLosesNothing(t *testing.T) {
	c := newCluster(t)
	w := startWorker(t, c.ns.URL(), c.leURL, "LOG_LEVEL=info")
	c.le.SetFaults(langextractd.Faults{Latency: 10 * time.Millisecond})
	ids := c.publishBatch("term", 300)
	c.waitSome("term", 30)
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM:\n%s", err, w.out.String())
		}
		w.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not exit after SIGTERM")
	}
	if !strings.Contains(w.out.String(), "draining") {
		t.Errorf("no drain logged:\n%s", w.out.String())
	}
	// Closing its own connection is no disconnection to warn about.
	if strings.Contains(w.out.String(), "NATS disconnected") {
		t.Errorf("a clean stop logged a disconnection:\n%s", w.out.String())
	}
	partial := len(c.storedResults("term"))
	startWorker(t, c.ns.URL(), c.leURL)
	c.waitAll("term", ids, 60*time.Second)
	t.Logf("%d results before SIGTERM completed the drain, all %d after a restart", partial, len(ids))
}

// With 500 jobs held and only two scoring (langextract is slow), SIGTERM
// naks the 498 waiting at once, the process exits within the drain timeout,
// and another worker answers every job long before AckWait (30 s) would
// have returned them.
func TestSIGTERMWithHeldJobsRequeuesThemAtOnce(t *testing.T) {
	c := newCluster(t)
	c.le.SetFaults(langextractd.Faults{Latency: 2 * time.Second})
	w := startWorker(t, c.ns.URL(), c.leURL, "WORKER_CONCURRENCY=2", "WORKER_DRAIN_TIMEOUT=4s", "ACK_WAIT=30s", "LANGEXTRACT_TIMEOUT=10")
	ids := c.publishBatch("held", 500)
	ctx := context.Background()
	cons, err := c.client.JS.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	ackPending := func() (int, uint64) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending, info.NumPending
	}
	eventually.NoError(t, 15*time.Second, func() error {
		if n, _ := ackPending(); n < 500 {
			return fmt.Errorf("worker holds %d jobs", n)
		}
		return nil
	}, "the worker holding all 500 jobs")
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM:\n%s", err, w.out.String())
		}
		w.done <- nil
	case <-time.After(4*time.Second + 5*time.Second):
		t.Fatal("worker did not exit within the drain timeout + 5 s")
	}
	exited := time.Since(start)
	// A naked job waits in the server's redelivery queue (still counted as
	// ack pending) for the next pull: the next worker gets every one long
	// before the 30 s AckWait.
	c.le.SetFaults(langextractd.Faults{Latency: time.Millisecond})
	startWorker(t, c.ns.URL(), c.leURL)
	c.waitAll("held", ids, 15*time.Second)
	t.Logf("exit %s after SIGTERM; all %d answered by the next worker %s after SIGTERM", exited.Round(time.Millisecond), len(ids), time.Since(start).Round(time.Millisecond))
}

func TestMalformedJobsNeverStopTheWorker(t *testing.T) {
	c := newCluster(t)
	w := startWorker(t, c.ns.URL(), c.leURL)
	for i, data := range []string{"", "null", "{", "\xff\xfe", `{"job_id":` + strings.Repeat("[", 10000), strings.Repeat("x", 70000)} {
		m := &nats.Msg{Subject: "scoring.jobs.mal", Data: []byte(data), Header: nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprintf("mal-%d", i)}}}
		if _, err := c.client.JS.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	ids := c.publishBatch("mal", 5)
	c.waitAll("mal", append(ids, "mal-0", "mal-1", "mal-2", "mal-3", "mal-4", "mal-5"), 30*time.Second)
	select {
	case err := <-w.done:
		t.Fatalf("worker exited: %v", err)
	default:
	}
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	for _, tt := range []struct{ env, want string }{
		{"LANGEXTRACT_TIMEOUT=abc", "LANGEXTRACT_TIMEOUT"},
		{"SEMANTIC_CACHE_MAX_SIZE=-1", "SEMANTIC_CACHE_MAX_SIZE"},
		{"PATTERN_SIMILARITY_WEIGHTS=concept=0.9,theme=0.2,domain=0.2,structure=0.15,relationship=0.15", "PATTERN_SIMILARITY_WEIGHTS"},
		{"HYBRID_VECTOR_WEIGHT=0.9", "HYBRID_VECTOR_WEIGHT"},
		{"HYBRID_STRATEGY=magic", "HYBRID_STRATEGY"},
		{"WORKER_CONCURRENCY=0", "WORKER_CONCURRENCY"},
		{"REDIS_PORT=99999", "REDIS_PORT"},
		{"DUPLICATE_WINDOW=5", "DUPLICATE_WINDOW"}, // the wrong type
		{"DUPLICATE_WINDOW=48h", "DUPLICATE_WINDOW"},
	} {
		cmd := exec.Command(workerBin)
		cmd.Env = append(os.Environ(), tt.env, "HTTP_ADDR=127.0.0.1:0", "NATS_LISTEN=127.0.0.1:0", "NATS_STORE_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		// 80: a usage error, whatever the kind of mistake.
		if !errors.As(err, &exit) || exit.ExitCode() != 80 || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s: err %v (want exit status 80), output %q", tt.env, err, out)
		}
	}
}

func TestHealthCommand(t *testing.T) {
	c := newCluster(t)
	w := startWorker(t, c.ns.URL(), c.leURL)
	out, err := exec.Command(workerBin, "health", "--worker-url", "http://"+w.addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "=== System Health Report ===") || !strings.Contains(string(out), "ALL SYSTEMS OPERATIONAL") {
		t.Fatalf("health: %v\n%s", err, out)
	}
	// Given the worker's own HTTP_ADDR (as a container's health check is),
	// it asks that port, not the default one.
	_, port, _ := net.SplitHostPort(w.addr)
	cmd := exec.Command(workerBin, "health")
	cmd.Env = append(os.Environ(), "HTTP_ADDR=:"+port, "HYBRIDSCORE_WORKER_URL=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ALL SYSTEMS OPERATIONAL") {
		t.Fatalf("health with HTTP_ADDR=:%s: %v\n%s", port, err, out)
	}
	c.ns.Stop()
	eventually.NoError(t, 10*time.Second, func() error {
		out, err := exec.Command(workerBin, "health", "--url", "http://"+w.addr).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "UNHEALTHY") {
			return fmt.Errorf("exit %v:\n%s", err, out)
		}
		return nil
	}, "worker health failing UNHEALTHY with NATS down")
	if _, err := exec.Command(workerBin, "health", "--url", "http://127.0.0.1:1").CombinedOutput(); err == nil {
		t.Fatal("health of an unreachable worker exited 0")
	}
}

// worker --help shows the settings of the default command, not only the
// command list; --version answers.
func TestHelpShowsTheSettings(t *testing.T) {
	out, err := exec.Command(workerBin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("worker --help: %v\n%s", err, out)
	}
	for _, want := range []string{"health [flags]", "--nats-url", "$LANGEXTRACT_TIMEOUT", "--langextract-timeout=10s", "$PATTERN_SIMILARITY_WEIGHTS"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("worker --help lacks %q:\n%s", want, out)
		}
	}
	if out, err := exec.Command(workerBin, "--version").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("worker --version: %v %q", err, out)
	}
}

// A worker killed on a job's last delivery: the job's AckWait runs out, the
// server gives up and announces it, and another worker moves it to the
// dead-letter stream.
// A worker killed on a job's last delivery (MAX_DELIVER=1): the server
// announces the job exhausted, and it is published again with a fresh
// budget rather than dead-lettered: another worker answers it.
func TestCrashOnTheLastDeliveryIsAnsweredByAnotherWorker(t *testing.T) {
	c := newCluster(t)
	c.le.SetFaults(langextractd.Faults{Latency: 5 * time.Second})
	env := []string{"MAX_DELIVER=1", "ACK_WAIT=1s", "LANGEXTRACT_TIMEOUT=20"}
	victim := startWorker(t, c.ns.URL(), c.leURL, env...)
	ids := c.publishBatch("crash", 1)
	eventually.True(t, 10*time.Second, func() bool { return c.le.Calls() > 0 }, "the first worker asking langextract")
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.done
	victim.done <- nil
	c.le.SetFaults(langextractd.Faults{})
	startWorker(t, c.ns.URL(), c.leURL, env...)
	c.waitAll("crash", ids, 30*time.Second)
	c.noDeadLetters()
}

// SIGTERM with MAX_DELIVER=1 while the worker holds jobs waiting on a slow
// langextract: every held job is on its last delivery, and each is given
// back with a fresh budget, not dead-lettered. Another worker answers all.
func TestSIGTERMOnTheLastDeliveryDeadLettersNothing(t *testing.T) {
	c := newCluster(t)
	c.le.SetFaults(langextractd.Faults{Latency: time.Second})
	env := []string{"MAX_DELIVER=1", "WORKER_DRAIN_TIMEOUT=2s"}
	victim := startWorker(t, c.ns.URL(), c.leURL, env...)
	ids := c.publishBatch("term-last", 300)
	eventually.True(t, 10*time.Second, func() bool { return c.le.Calls() > 0 }, "the worker asking langextract")
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	victim.done <- nil
	c.le.SetFaults(langextractd.Faults{})
	startWorker(t, c.ns.URL(), c.leURL, env...)
	got := c.waitAll("term-last", ids, 60*time.Second)
	c.noDeadLetters()
	t.Logf("SIGTERM with MAX_DELIVER=1 and 300 jobs held: %d results, 0 dead letters", len(got))
}

// A worker frozen (SIGSTOP) while draining a batch, for longer than the
// duplicate window and its AckWait: its jobs are redelivered to another
// worker meanwhile, and on resume its stores in flight are published again.
// The server refuses every second result on a job's subject: no job has two.
func TestStalledWorkerStoresNoSecondResult(t *testing.T) {
	c := newCluster(t)
	env := []string{"DUPLICATE_WINDOW=1s", "ACK_WAIT=1s", "WORKER_PUBLISH_TIMEOUT=500ms"}
	stalled := startWorker(t, c.ns.URL(), c.leURL, env...)
	c.le.SetFaults(langextractd.Faults{Latency: 5 * time.Millisecond})
	lane := "stall"
	ids := c.publishBatch(lane, 3000)
	c.waitSome(lane, 200)
	if err := stalled.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	other := startWorker(t, c.ns.URL(), c.leURL, env...)
	// The fault itself: frozen past the 1 s window and AckWait.
	time.Sleep(3 * time.Second)
	if err := stalled.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	got := c.waitAll(lane, ids, 90*time.Second)
	redelivered := 0
	for _, rs := range got {
		if rs[0].DeliveryAttempt > 1 {
			redelivered++
		}
	}
	t.Logf("after a 3 s stall: %d jobs, each with one stored result; %d answered on a redelivery; repeats counted: %s and %s",
		len(got), redelivered, metric(t, stalled, "scoring_duplicates_total"), metric(t, other, "scoring_duplicates_total"))
}

// kill -9 of the only worker with jobs in flight (some stored and not yet
// acked), restarted after the duplicate window: the redelivered jobs that
// were answered are repeats, never second results.
func TestKill9OfTheOnlyWorkerRestartedAfterTheWindow(t *testing.T) {
	c := newCluster(t)
	env := []string{"DUPLICATE_WINDOW=1s", "ACK_WAIT=1s"}
	victim := startWorker(t, c.ns.URL(), c.leURL, env...)
	c.le.SetFaults(langextractd.Faults{Latency: 5 * time.Millisecond})
	lane := "kill-only"
	ids := c.publishBatch(lane, 3000)
	c.waitSome(lane, 300)
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	victim.done <- nil // for cleanup
	// The fault's length: past the window before anything is redelivered.
	time.Sleep(1500 * time.Millisecond)
	again := startWorker(t, c.ns.URL(), c.leURL, env...)
	got := c.waitAll(lane, ids, 90*time.Second)
	t.Logf("after kill -9 and a restart past the window: %d jobs, each with one stored result; repeats: %s", len(got), metric(t, again, "scoring_duplicates_total"))
}

// metric returns the lines of a worker's /metrics that start with name.
func metric(t *testing.T, p *proc, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// noDeadLetters fails when the dead-letter stream holds anything.
func (c *cluster) noDeadLetters() {
	c.t.Helper()
	ctx := context.Background()
	dlq, err := c.client.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		c.t.Fatal(err)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		c.t.Fatalf("%d dead letters", info.State.Msgs)
	}
}

// Stopped while NATS is gone, a worker exits at once: there is nothing to
// flush (what the reconnect buffer holds, the server never took), and
// waiting for it only delayed a rolling restart during an outage.
func TestStopDuringANATSOutageIsQuick(t *testing.T) {
	c := newCluster(t)
	w := startWorker(t, c.ns.URL(), c.leURL)
	c.ns.Stop()
	w.out.WaitLine(t, 10*time.Second, `NATS disconnected`)
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup's wait
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop within 30 s of SIGTERM")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("stopping during the outage took %s (want under 4 s)\n%s", d.Round(time.Millisecond), w.out.String())
	}
	if !strings.Contains(w.out.String(), "nothing to flush") {
		t.Fatalf("the shutdown does not say why it did not flush\n%s", w.out.String())
	}
}
