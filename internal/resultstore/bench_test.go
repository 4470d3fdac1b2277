package resultstore

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// BenchmarkPublishPaths stores b.N results, each on a subject of its own
// with Nats-Expected-Last-Subject-Sequence 0 (what the worker does for
// every job), through two clients, driven the same way: a pool of
// GOMAXPROCS goroutines that takes each PubAck as an event and sends the
// next store, with up to 4096 in flight.
//
//   - store: this package (plain publishes with a reply token of its own
//     inbox, its PubAck parser);
//   - jetstream: nats.go's asynchronous publisher (PublishMsgAsync, its
//     ack and error handlers, its futures map and PubAck decoding).
//
// Set BENCH_NATS_URL to run against a nats-server in its own process (then
// the figures are the client's cost alone, as in production); without it
// an embedded server shares the process. docs/operations.md has figures.
func BenchmarkPublishPaths(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchPath(b, storePath) })
	b.Run("jetstream", func(b *testing.B) { benchPath(b, jetstreamPath) })
}

const benchInFlight = 4096

type path func(b *testing.B, nc *nats.Conn, js jetstream.JetStream, lane string)

func benchPath(b *testing.B, run path) {
	url := os.Getenv("BENCH_NATS_URL")
	if url == "" {
		ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Stop()
		url = ns.URL()
	}
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := topology.Provision(ctx, js, topology.Config{}); err != nil {
		b.Fatal(err)
	}
	lane := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	run(b, nc, js, lane)
	b.StopTimer()
	// This process's CPU alone: with BENCH_NATS_URL the server's is not in
	// it, and this is the client's cost per stored result.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	if s, err := js.Stream(ctx, topology.ResultsStream); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(job.ResultsPrefix+lane+".>"))
	}
}

var benchResult = []byte(`{"schema_version":1,"job_id":"bench-000000","status":"scored","hybrid_score":0.725,"vector_score":0.8,` +
	`"pattern_score":0.55,"vector_weight":0.7,"pattern_weight":0.3,"weights_adjusted":false,"adjustment_reason":null,"confidence":0.8,` +
	`"score_agreement":0.75,"component_scores":{"concept":0.5,"theme":0.6,"domain":0.7,"structure":0.4,"relationship":0.3},` +
	`"used_patterns":true,"fallback_reason":null,"cache":{"task":"memory","pattern":"memory"},"worker_id":"bench","delivery_attempt":1,` +
	`"latency_ms":0.2,"scored_at":"2026-12-04T00:00:00Z"}`)

// runPool runs done events on GOMAXPROCS goroutines and refills the window.
func runPool(b *testing.B, start func(i int), finish func(i int) bool) {
	events := make(chan int, benchInFlight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, done := 0, 0
	all := make(chan struct{})
	send := func() {
		mu.Lock()
		if sent >= b.N {
			mu.Unlock()
			return
		}
		i := sent
		sent++
		mu.Unlock()
		start(i)
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range events {
				if !finish(i) {
					continue
				}
				mu.Lock()
				done++
				last := done == b.N
				mu.Unlock()
				if last {
					close(all)
					return
				}
				send()
			}
		}()
	}
	benchEvents = events
	for range min(benchInFlight, b.N) {
		send()
	}
	<-all
	close(events)
	wg.Wait()
}

var benchEvents chan int

func storePath(b *testing.B, nc *nats.Conn, js jetstream.JetStream, lane string) {
	s := New(nc, js, Config{Timeout: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	go func() { _ = s.Run(ctx, ready) }()
	<-ready
	ops := make([]Op, b.N)
	notify := func(op *Op) { benchEvents <- op.Tag.(int) }
	runPool(b, func(i int) {
		ops[i] = Op{Tag: i, Request: Request{Lane: lane, JobID: "j-" + strconv.Itoa(i), Digest: "d", Result: benchResult}}
		s.Start(&ops[i], notify)
	}, func(i int) bool {
		res, done := s.Advance(&ops[i])
		if done && res.Outcome != Stored {
			b.Errorf("outcome %+v", res)
		}
		return done
	})
}

func jetstreamPath(b *testing.B, nc *nats.Conn, _ jetstream.JetStream, lane string) {
	var pending sync.Map // *nats.Msg → index
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*benchInFlight), jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			if i, ok := pending.LoadAndDelete(m); ok {
				benchEvents <- i.(int)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			b.Errorf("publish: %v", err)
			if i, ok := pending.LoadAndDelete(m); ok {
				benchEvents <- i.(int)
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]nats.Msg, b.N)
	runPool(b, func(i int) {
		m := &msgs[i]
		*m = nats.Msg{Subject: job.ResultSubject(lane, "j-"+strconv.Itoa(i)), Data: benchResult,
			Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}, HeaderDigest: []string{"d"}}}
		pending.Store(m, i)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Error(err)
		}
	}, func(int) bool { return true })
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
