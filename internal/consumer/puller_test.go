package consumer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/cputime"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/natsembed"
)

// pullEnv is an embedded server with a work-queue stream PULL (subjects
// pull.>) and a durable pull consumer "c" on it.
type pullEnv struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	cons jetstream.Consumer
}

func newPullEnv(tb testing.TB) *pullEnv {
	tb.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Stop)
	return connectPullEnv(tb, ns.URL())
}

func connectPullEnv(tb testing.TB, url string) *pullEnv {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PULL", Subjects: []string{"pull.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		tb.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "PULL", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	return &pullEnv{nc: nc, js: js, cons: cons}
}

func (e *pullEnv) publish(tb testing.TB, n int, data []byte) {
	tb.Helper()
	for i := range n {
		if _, err := e.js.PublishAsync("pull.jobs", data, jetstream.WithMsgID("m-"+strconv.Itoa(i))); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		tb.Fatal("publishes not acknowledged")
	}
}

func (e *pullEnv) info(tb testing.TB) *jetstream.ConsumerInfo {
	tb.Helper()
	info, err := e.cons.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info
}

// collector records what a puller delivers.
type collector struct {
	nc   *nats.Conn
	mu   sync.Mutex
	msgs []jetstream.Msg
}

func (c *collector) deliver(m *nats.Msg) {
	c.mu.Lock()
	c.msgs = append(c.msgs, &pulledMsg{m: m, nc: c.nc})
	c.mu.Unlock()
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// startPuller starts a puller on e's consumer that collects what it
// delivers.
func startPuller(t *testing.T, e *pullEnv) (*puller, *collector) {
	t.Helper()
	c := &collector{nc: e.nc}
	p, err := newPuller(e.nc, "PULL", "c", c.deliver)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// A request asks for exactly its batch: it ends as soon as the batch has
// arrived (not at its expiry), and the server hands out no more.
func TestPullerAsksForExactlyTheRoom(t *testing.T) {
	e := newPullEnv(t)
	e.publish(t, 100, []byte(`{"n":1}`))
	p, c := startPuller(t, e)
	start := time.Now()
	if err := p.pull(30, 1<<20, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a request whose batch arrived took %s to end; it waited for its expiry", took)
	}
	if got := c.len(); got != 30 {
		t.Fatalf("delivered %d, want 30", got)
	}
	// The server counts a consumer's pending messages as its stream signals
	// them, not when a publish is acknowledged: right after a burst of
	// publishes it can report 0 pending for a moment (seen once in CI), so
	// the count is awaited while the 30 handed out must hold throughout.
	eventually.NoError(t, 5*time.Second, func() error {
		info := e.info(t)
		if info.NumAckPending != 30 {
			return eventually.Stop(fmt.Errorf("%d ack pending, want 30: the server handed out more than the request asked for", info.NumAckPending))
		}
		if info.NumPending != 70 {
			return fmt.Errorf("%d pending, want 70", info.NumPending)
		}
		return nil
	}, "server's counts")
	// The messages carry nats.go's acknowledgements and metadata.
	for i, m := range c.msgs {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if md.Sequence.Stream != uint64(i+1) || md.NumDelivered != 1 || md.Stream != "PULL" || md.Consumer != "c" {
			t.Fatalf("message %d: metadata %+v", i, md)
		}
		if string(m.Data()) != `{"n":1}` || m.Subject() != "pull.jobs" || m.Headers().Get(jetstream.MsgIDHeader) != "m-"+strconv.Itoa(i) {
			t.Fatalf("message %d: %s %q %v", i, m.Subject(), m.Data(), m.Headers())
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, 5*time.Second, func() bool { return e.info(t).NumAckPending == 0 }, "acks applied")
	p.close(time.Second)
}

// A request nothing answers ends at its expiry, without an error; a byte
// budget ends it before its batch.
func TestPullerEndsAtExpiryAndAtItsBytes(t *testing.T) {
	e := newPullEnv(t)
	p, c := startPuller(t, e)
	defer p.close(time.Second)
	start := time.Now()
	if err := p.pull(10, 1<<20, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > time.Second {
		t.Fatalf("an empty request ended after %s, want its expiry (300ms)", took)
	}
	e.publish(t, 20, []byte(strings.Repeat("x", 1000)))
	start = time.Now()
	if err := p.pull(20, 3500, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a request that used its bytes took %s to end", took)
	}
	if got := c.len(); got < 1 || got > 4 {
		t.Fatalf("3,500 bytes brought %d messages of 1,000 bytes", got)
	}
}

// A request to a consumer that is deleted while it waits, or that does not
// exist, ends with the errors that make the worker bind again.
func TestPullerReportsAConsumerThatIsGone(t *testing.T) {
	e := newPullEnv(t)
	p, _ := startPuller(t, e)
	defer p.close(time.Second)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = e.js.DeleteConsumer(context.Background(), "PULL", "c")
	}()
	if err := p.pull(10, 1<<20, 5*time.Second); !errors.Is(err, jetstream.ErrConsumerDeleted) {
		t.Fatalf("deleted while waiting: %v, want ErrConsumerDeleted", err)
	}
	if err := p.pull(10, 1<<20, 5*time.Second); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("no consumer: %v, want ErrConsumerNotFound", err)
	}
}

// Which statuses end a request quietly, which with an error, and which
// error sends the worker to bind its consumer again.
func TestStatusErr(t *testing.T) {
	for _, c := range []struct {
		status, desc string
		want         error // nil: ends without error
	}{
		{"404", "No Messages", nil},
		{"408", "Request Timeout", nil},
		{"409", "Message Size Exceeds MaxBytes", nil},
		{"409", "Leadership Change", nil},
		{"409", "Batch Completed", nil},
		{"409", "Consumer Deleted", jetstream.ErrConsumerDeleted},
		{"409", "Exceeded MaxWaiting", errPullStatus},
		{"503", "", jetstream.ErrConsumerNotFound},
		{"400", "Bad Request", errPullStatus},
	} {
		err := statusErr(c.status, c.desc)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s %s: %v, want %v", c.status, c.desc, err, c.want)
		}
	}
}

// What arrives after a request was given up is still delivered (and so
// held and kept alive), and close hands on everything the subscription
// received before it returns.
func TestPullerDeliversLateMessagesAndDrainsOnClose(t *testing.T) {
	e := newPullEnv(t)
	p, c := startPuller(t, e)
	// A request the puller gives up at once (its wait is shorter than
	// the server's): what the server then sends is not dropped.
	req := []byte(`{"batch":5,"expires":5000000000}`)
	if err := e.nc.PublishRequest(p.subject, p.inbox+"zz", req); err != nil {
		t.Fatal(err)
	}
	e.publish(t, 5, []byte(`{}`))
	eventually.True(t, 5*time.Second, func() bool { return c.len() == 5 }, "late deliveries handed on")
	p.close(time.Second)
	select {
	case <-p.closed:
	default:
		t.Fatal("close returned before the subscription was closed")
	}
}

// A job whose producer sent no body and a Status header, as the server's
// own status messages look, is still a job: delivered, not swallowed (it
// would then wait out its AckWait, delivery after delivery).
func TestPullerDeliversAJobThatLooksLikeAStatus(t *testing.T) {
	e := newPullEnv(t)
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "pull.jobs",
		Header: nats.Header{"Status": []string{"408"}, "Description": []string{"Request Timeout"}}}); err != nil {
		t.Fatal(err)
	}
	p, c := startPuller(t, e)
	defer p.close(time.Second)
	if err := p.pull(1, 1<<20, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if c.len() != 1 || c.msgs[0].Headers().Get("Status") != "408" {
		t.Fatalf("delivered %d messages, want the job", c.len())
	}
}

// Terminating with a reason reaches the server: the message is not
// redelivered and the advisory carries the reason.
func TestPulledMsgTermWithReason(t *testing.T) {
	e := newPullEnv(t)
	adv, err := e.nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.PULL.c")
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, 1, []byte(`{}`))
	p, c := startPuller(t, e)
	defer p.close(time.Second)
	if err := p.pull(1, 1<<20, time.Second); err != nil || c.len() != 1 {
		t.Fatalf("pull: %v, %d messages", err, c.len())
	}
	if err := c.msgs[0].TermWithReason("invalid_json"); err != nil {
		t.Fatal(err)
	}
	m, err := adv.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Data), `"reason":"invalid_json"`) {
		t.Fatalf("advisory %s has no reason", m.Data)
	}
}

// BenchmarkPullPaths compares nats.go's Fetch with the puller, each taking
// a backlog of jobs in requests of 500 and acking each, against a NATS
// server in a process of its own (this test binary, serving): besides the
// time per message it reports the CPU each message cost this process (the
// client) and the server's
// (docs/operations.md#the-pull-path-against-natsgos-fetch).
func BenchmarkPullPaths(b *testing.B) {
	data := []byte(strings.Repeat(`{"task":"x"}`, 40))
	run := func(b *testing.B, drain func(e *pullEnv, n int)) {
		url, serverCPU := serverProcess(b)
		e := connectPullEnv(b, url)
		e.publish(b, b.N, data)
		b.ReportAllocs()
		c0, s0 := cputime.Self(), serverCPU()
		b.ResetTimer()
		drain(e, b.N)
		b.StopTimer()
		b.ReportMetric(float64((cputime.Self()-c0).Nanoseconds())/float64(b.N), "client-cpu-ns/msg")
		b.ReportMetric(float64((serverCPU()-s0).Nanoseconds())/float64(b.N), "server-cpu-ns/msg")
	}
	b.Run("fetch", func(b *testing.B) {
		run(b, func(e *pullEnv, n int) {
			for got := 0; got < n; {
				batch, err := e.cons.Fetch(min(500, n-got), jetstream.FetchMaxBytes(64<<20), jetstream.FetchMaxWait(time.Second))
				if err != nil {
					b.Fatal(err)
				}
				for m := range batch.Messages() {
					_ = m.Ack()
					got++
				}
			}
		})
	})
	b.Run("puller", func(b *testing.B) {
		run(b, func(e *pullEnv, n int) {
			var got atomic.Int64
			p, err := newPuller(e.nc, "PULL", "c", func(m *nats.Msg) { pm := pulledMsg{m: m, nc: e.nc}; _ = pm.Ack(); got.Add(1) })
			if err != nil {
				b.Fatal(err)
			}
			defer p.close(time.Second)
			for int(got.Load()) < n {
				if err := p.pull(min(500, n-int(got.Load())), 64<<20, time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// serveEnv names the variable that makes this test binary a NATS server
// for BenchmarkPullPaths: its value is the store directory.
const serveEnv = "HYBRIDSCORE_PULL_BENCH_STORE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(serveEnv); dir != "" {
		ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ns.URL())
		_, _ = io.Copy(io.Discard, os.Stdin) // serve until the benchmark closes stdin
		ns.Stop()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serverProcess starts this binary as a NATS server and returns its URL
// and a reader of its CPU time.
func serverProcess(b *testing.B) (string, func() time.Duration) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+b.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	return strings.TrimSpace(url), cputime.Process(cmd.Process.Pid)
}
