// Package bench measures a worker the way CONTRACT.md §8 says: each
// scenario drains a lane of jobs published beforehand and is timed from the
// first stored result to the last, by the result stream's own timestamps;
// the raw JetStream loop (pull, store a same-size result with Nats-Msg-Id,
// ack after the PubAck, no decoding or scoring) runs on the same server in
// the same run, and the report gives the ratio. It also runs the runbook's
// three scenarios and a steady-rate latency test.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/pkg/config"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/natsembed"
	"github.com/hybridscore/hybridscore/pkg/producer"
	"github.com/hybridscore/hybridscore/pkg/server"
	"github.com/hybridscore/hybridscore/pkg/topology"
)

// Options configure a run.
type Options struct {
	// NATSURL of a server with a running worker; "" starts an embedded
	// server and an in-process worker (the bench then controls when the
	// worker starts, so throughput lanes are published beforehand).
	NATSURL     string
	Jobs        int           // jobs per throughput scenario; 0 means 20000
	ColdJobs    int           // jobs of the cold-cache scenario; 0 means 2000
	Baseline    bool          // also run the raw JetStream loop and report the ratio
	Concurrency int           // in-process worker concurrency; 0 means the default
	Rate        float64       // steady-rate scenario, jobs/s; 0 skips it
	RateFor     time.Duration // steady-rate duration; 0 means 10 s
	SyncAlways  bool          // embedded server fsyncs every write
	Out         io.Writer
	Log         *zap.Logger
}

// Report holds the figures of a run.
type Report struct {
	Raw, Cold, Warm, Concurrent Throughput
	Ratio                       float64 // warm worker ÷ raw loop
	LatencyP50, LatencyP99      float64 // ms, steady-rate scenario
	LatencyJobs                 int
	RSSMB                       float64 // this process at the end (embedded worker included)
}

// Throughput is one scenario's result.
type Throughput struct {
	Jobs    int
	Elapsed time.Duration // first stored result to last
	PerSec  float64
}

func (t Throughput) String() string {
	if t.Jobs == 0 {
		return "not run"
	}
	return fmt.Sprintf("%d results in %s: %.0f results/s", t.Jobs, t.Elapsed.Round(time.Millisecond), t.PerSec)
}

// Run runs the benchmark and prints its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Jobs <= 0 {
		o.Jobs = 20000
	}
	if o.ColdJobs <= 0 {
		o.ColdJobs = 2000
	}
	if o.RateFor <= 0 {
		o.RateFor = 10 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	b := &run{o: o, rep: &Report{}}
	return b.rep, b.run(ctx)
}

type run struct {
	o   Options
	rep *Report
	nc  *nats.Conn
	js  jetstream.JetStream
	url string
}

func (b *run) printf(format string, args ...any) { fmt.Fprintf(b.o.Out, format, args...) }

func (b *run) run(ctx context.Context) error {
	embedded := b.o.NATSURL == ""
	b.url = b.o.NATSURL
	if embedded {
		dir, err := os.MkdirTemp("", "hybridscore-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir, SyncAlways: b.o.SyncAlways})
		if err != nil {
			return err
		}
		defer srv.Stop()
		b.url = srv.URL()
		b.printf("embedded NATS %s (sync_always=%v), file storage\n", b.url, b.o.SyncAlways)
	}
	var err error
	if b.nc, err = nats.Connect(b.url, nats.MaxReconnects(-1)); err != nil {
		return err
	}
	defer b.nc.Close()
	if b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return err
	}
	topo := topology.Config{}
	for _, sc := range topo.Streams() {
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil && !embedded {
			// A running deployment's streams are the operator's: keep them.
			if _, gerr := b.js.Stream(ctx, sc.Name); gerr != nil {
				return fmt.Errorf("stream %s: %w", sc.Name, err)
			}
		} else if err != nil {
			return err
		}
	}
	warmTexts := texts("warm", 100)
	if b.o.Baseline {
		if err := b.raw(ctx, embedded); err != nil {
			return fmt.Errorf("raw loop: %w", err)
		}
		b.printf("raw JetStream loop:   %s\n", b.rep.Raw)
	}
	// Cold cache: every text new.
	if b.rep.Cold, err = b.scenario(ctx, embedded, "bench-cold-"+nonce(), b.o.ColdJobs, texts("cold-"+nonce(), 2*b.o.ColdJobs), nil, false); err != nil {
		return fmt.Errorf("cold: %w", err)
	}
	b.printf("cold cache:           %s\n", b.rep.Cold)
	if b.rep.Warm, err = b.scenario(ctx, embedded, "bench-warm-"+nonce(), b.o.Jobs, warmTexts, warmTexts, false); err != nil {
		return fmt.Errorf("warm: %w", err)
	}
	b.printf("warm cache:           %s\n", b.rep.Warm)
	if b.rep.Concurrent, err = b.scenario(ctx, embedded, "bench-conc-"+nonce(), b.o.Jobs, warmTexts, warmTexts, true); err != nil {
		return fmt.Errorf("concurrent: %w", err)
	}
	b.printf("concurrent (10 pub):  %s\n", b.rep.Concurrent)
	if b.o.Baseline && b.rep.Raw.PerSec > 0 {
		b.rep.Ratio = b.rep.Warm.PerSec / b.rep.Raw.PerSec
		b.printf("ratio worker/raw:     %.2f (warm cache, same server, same run)\n", b.rep.Ratio)
	}
	if b.o.Rate > 0 {
		if err := b.steady(ctx, embedded, warmTexts); err != nil {
			return fmt.Errorf("steady rate: %w", err)
		}
		b.printf("steady %.0f jobs/s:  publish→result p50 %.3f ms, p99 %.3f ms over %d jobs\n", b.o.Rate, b.rep.LatencyP50, b.rep.LatencyP99, b.rep.LatencyJobs)
	}
	b.rep.RSSMB = rssMB()
	b.printf("resident memory:      %.1f MB (this process%s)\n", b.rep.RSSMB, map[bool]string{true: ", worker and NATS server included", false: ""}[embedded])
	return nil
}

func nonce() string { return strconv.FormatInt(time.Now().UnixNano()%1e9, 36) }

// texts returns n distinct task-like texts of about 200 characters.
func texts(prefix string, n int) []string {
	words := []string{"implement", "OAuth2", "authentication", "tokens", "cache", "Redis", "sessions", "gateway", "validates", "signatures",
		"payments", "API", "service", "deploy", "Kubernetes", "queue", "NATS", "stream", "retry", "backoff", "metrics", "latency"}
	out := make([]string, n)
	for i := range out {
		var sb strings.Builder
		sb.WriteString(prefix)
		sb.WriteString(" ")
		sb.WriteString(strconv.Itoa(i))
		for j := 0; sb.Len() < 200; j++ {
			sb.WriteString(" ")
			sb.WriteString(words[(i*7+j*3+j*j)%len(words)])
		}
		out[i] = sb.String()
	}
	return out
}

func jobFor(lane string, i int, ts []string) []byte {
	w := job.Wire{JobID: lane + "-" + strconv.Itoa(i), TaskDescription: ts[i%len(ts)], HistoricalPatternText: ts[(i*31+1)%len(ts)],
		VectorSimilarity: float64(i%100) / 100, TaskCharacteristics: &job.WireCharacteristics{Complexity: "complex"}}
	b, _ := jsonMarshal(w)
	return b
}

// publishLane publishes n jobs to scoring.jobs.<lane>, asynchronously, from
// `publishers` goroutines, and waits for every PubAck.
func (b *run) publishLane(ctx context.Context, lane string, n, publishers int, ts []string) error {
	var next atomic.Int64
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: topology.JobsPrefix + lane, Data: jobFor(lane, i, ts),
					Header: nats.Header{jetstream.MsgIDHeader: []string{lane + "-" + strconv.Itoa(i)}}}, stallWait); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return errors.New("PubAcks did not complete")
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// collector counts stored results on one subject and keeps the stream
// timestamps of the first and the last.
type collector struct {
	want        int
	n           atomic.Int64
	first, last atomic.Int64
	done        chan struct{}
	cc          jetstream.ConsumeContext
}

func (b *run) collect(ctx context.Context, subject string, want int) (*collector, error) {
	c := &collector{want: want, done: make(chan struct{})}
	cons, err := b.js.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, err
	}
	c.cc, err = cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		ts := md.Timestamp.UnixNano()
		c.first.CompareAndSwap(0, ts)
		c.last.Store(ts)
		if int(c.n.Add(1)) == c.want {
			close(c.done)
		}
	}, jetstream.PullMaxMessages(1000))
	return c, err
}

func (c *collector) wait(ctx context.Context, timeout time.Duration) (Throughput, error) {
	defer c.cc.Stop()
	select {
	case <-c.done:
	case <-ctx.Done():
		return Throughput{}, ctx.Err()
	case <-time.After(timeout):
		return Throughput{}, fmt.Errorf("%d of %d results after %s", c.n.Load(), c.want, timeout)
	}
	el := time.Duration(c.last.Load() - c.first.Load())
	t := Throughput{Jobs: c.want, Elapsed: el}
	if el > 0 {
		t.PerSec = float64(c.want-1) / el.Seconds()
	}
	return t, nil
}

// startWorker starts an in-process worker, with texts already in its cache.
func (b *run) startWorker(ctx context.Context, warm []string) (stop func(), err error) {
	cfg := config.Defaults()
	cfg.NATSURL = b.url
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.SemanticCacheMaxSize = 100000
	if b.o.Concurrency > 0 {
		cfg.WorkerConcurrency = b.o.Concurrency
	}
	s, err := server.New(ctx, cfg, b.o.Log)
	if err != nil {
		return nil, err
	}
	if len(warm) > 0 {
		if _, err := s.Cache.Warm(ctx, warm, "en", "pattern_matching"); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(wctx) }()
	return func() { cancel(); <-done }, nil
}

func (b *run) scenario(ctx context.Context, embedded bool, lane string, n int, ts, warm []string, concurrent bool) (Throughput, error) {
	c, err := b.collect(ctx, topology.ResultsPrefix+lane, n)
	if err != nil {
		return Throughput{}, err
	}
	var stop func()
	if embedded && !concurrent {
		// Published beforehand, drained by a worker started afterwards.
		if err := b.publishLane(ctx, lane, n, 1, ts); err != nil {
			return Throughput{}, err
		}
		if stop, err = b.startWorker(ctx, warm); err != nil {
			return Throughput{}, err
		}
	} else {
		if embedded {
			if stop, err = b.startWorker(ctx, warm); err != nil {
				return Throughput{}, err
			}
		}
		publishers := 1
		if concurrent {
			publishers = 10
		}
		if err := b.publishLane(ctx, lane, n, publishers, ts); err != nil {
			return Throughput{}, err
		}
	}
	t, err := c.wait(ctx, 5*time.Minute)
	if stop != nil {
		stop()
	}
	return t, err
}

// steady publishes at a fixed rate and measures publish→result latency as
// seen by a subscriber of the results subject.
func (b *run) steady(ctx context.Context, embedded bool, ts []string) error {
	lane := "bench-steady-" + nonce()
	var stop func()
	var err error
	if embedded {
		if stop, err = b.startWorker(ctx, ts); err != nil {
			return err
		}
		defer stop()
	}
	n := int(b.o.Rate * b.o.RateFor.Seconds())
	sent := make([]atomic.Int64, n)
	lat := make([]float64, 0, n)
	var mu sync.Mutex
	got := make(chan struct{}, 1)
	sub, err := b.nc.Subscribe(topology.ResultsPrefix+lane, func(m *nats.Msg) {
		now := time.Now().UnixNano()
		id := m.Header.Get(jetstream.MsgIDHeader)
		i, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
		if err != nil || i >= n {
			return
		}
		mu.Lock()
		lat = append(lat, float64(now-sent[i].Load())/1e6)
		full := len(lat) == n
		mu.Unlock()
		if full {
			got <- struct{}{}
		}
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Warm the path: a few jobs first, not measured.
	interval := time.Duration(float64(time.Second) / b.o.Rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sent[i].Store(time.Now().UnixNano())
		if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: topology.JobsPrefix + lane, Data: jobFor(lane, i, ts),
			Header: nats.Header{jetstream.MsgIDHeader: []string{lane + "-" + strconv.Itoa(i)}}}, stallWait); err != nil {
			return err
		}
	}
	select {
	case <-got:
	case <-time.After(time.Minute):
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%d of %d results", len(lat), n)
	}
	mu.Lock()
	defer mu.Unlock()
	b.rep.LatencyP50, b.rep.LatencyP99 = producer.Percentile(lat, 0.5), producer.Percentile(lat, 0.99)
	b.rep.LatencyJobs = n
	return nil
}
