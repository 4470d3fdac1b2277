package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	addr string
	out  *workertest.Buffer // safe to read while the child writes
	done chan error
}

// startWorker runs the worker binary against natsURL with extra env.
func startWorker(t *testing.T, natsURL, leURL string, env ...string) *proc {
	t.Helper()
	p := &proc{addr: fmt.Sprintf("127.0.0.1:%d", workertest.FreePort(t)), out: &workertest.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(workerBin)
	p.cmd.Env = append(os.Environ(), "NATS_URL="+natsURL, "HTTP_ADDR="+p.addr, "LANGEXTRACT_URL="+leURL, "LOG_LEVEL=warn",
		"ACK_WAIT=2s", "DUPLICATE_WINDOW=2m", "WORKER_CONCURRENCY=8", "WORKER_DRAIN_TIMEOUT=10s")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("worker %s output:\n%s", p.addr, p.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not ready:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
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

// storedResults reads every stored result of a lane: job id → results.
func (c *cluster) storedResults(lane string) map[string][]job.Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := c.client.JS.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.ResultsPrefix + lane}})
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

// waitAll waits until every id has a stored result, then checks each has
// exactly one.
func (c *cluster) waitAll(lane string, ids []string, timeout time.Duration) map[string][]job.Result {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := c.storedResults(lane)
		missing := 0
		for _, id := range ids {
			if len(got[id]) == 0 {
				missing++
			}
		}
		if missing == 0 {
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
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d jobs without a result after %s", missing, len(ids), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) waitSome(lane string, n int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(c.storedResults(lane)) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("fewer than %d results", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	deadline := time.Now().Add(15 * time.Second)
	for n, _ := ackPending(); n < 500; n, _ = ackPending() {
		if time.Now().After(deadline) {
			t.Fatalf("worker holds %d jobs, want 500", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	} {
		cmd := exec.Command(workerBin)
		cmd.Env = append(os.Environ(), tt.env, "HTTP_ADDR=127.0.0.1:0", "NATS_LISTEN=127.0.0.1:0", "NATS_STORE_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s: err %v, output %q", tt.env, err, out)
		}
	}
}

func TestHealthCommand(t *testing.T) {
	c := newCluster(t)
	w := startWorker(t, c.ns.URL(), c.leURL)
	out, err := exec.Command(workerBin, "health", "--url", "http://"+w.addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "=== System Health Report ===") || !strings.Contains(string(out), "ALL SYSTEMS OPERATIONAL") {
		t.Fatalf("health: %v\n%s", err, out)
	}
	c.ns.Stop()
	var mu sync.Mutex
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		out, err = exec.Command(workerBin, "health", "--url", "http://"+w.addr).CombinedOutput()
		mu.Unlock()
		if err != nil && strings.Contains(string(out), "UNHEALTHY") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health with NATS down: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := exec.Command(workerBin, "health", "--url", "http://127.0.0.1:1").CombinedOutput(); err == nil {
		t.Fatal("health of an unreachable worker exited 0")
	}
}

// A worker killed on a job's last delivery: the job's AckWait runs out, the
// server gives up and announces it, and another worker moves it to the
// dead-letter stream.
func TestExhaustedByACrashIsDeadLettered(t *testing.T) {
	c := newCluster(t)
	c.le.SetFaults(langextractd.Faults{Latency: 5 * time.Second})
	env := []string{"MAX_DELIVER=1", "ACK_WAIT=1s", "LANGEXTRACT_TIMEOUT=20"}
	victim := startWorker(t, c.ns.URL(), c.leURL, env...)
	ids := c.publishBatch("crash", 1)
	deadline := time.Now().Add(10 * time.Second)
	for c.le.Calls() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.done
	victim.done <- nil
	startWorker(t, c.ns.URL(), c.leURL, env...)
	dlq, err := c.client.JS.OrderedConsumer(context.Background(), topology.DLQStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := dlq.Fetch(1, jetstream.FetchMaxWait(20*time.Second))
	var got jetstream.Msg
	for m := range batch.Messages() {
		got = m
	}
	if got == nil || got.Headers().Get("Hybridscore-Reason") != "max_deliveries" || got.Headers().Get("Hybridscore-Job-Id") != ids[0] {
		t.Fatalf("dead letter %v", got)
	}
}
