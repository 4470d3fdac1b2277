package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/cputime"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// rawIDPlaceholder is the job id inside rawResult, replaced by each job's.
const rawIDPlaceholder = "bench-raw-000000"

// rawResultBytes is the size of a raw loop's result for a job id of a raw
// lane's usual length: the size of a worker's result
// (docs/operations.md#measuring-throughput).
const (
	rawResultBytes = 620
	rawIDLen       = len("bench-raw-abcdef-12345")
)

// rawResult is a result-like JSON object whose worker_id is padded so that,
// with the job id, it is rawResultBytes long: only its size matters to the
// raw loop. The bench prints the mean size of the worker's results next to
// the raw loop's.
var rawResult = func() []byte {
	r := map[string]any{"schema_version": 1, "job_id": rawIDPlaceholder, "status": job.StatusScored,
		"hybrid_score": 0.8263, "vector_score": 0.85, "pattern_score": 0.7712, "vector_weight": 0.7, "pattern_weight": 0.3,
		"confidence": 0.91, "used_patterns": true, "cache": map[string]string{"task": "memory", "pattern": "memory"},
		"delivery_attempt": 1, "latency_ms": 0.42, "scored_at": time.Now().UTC().Format(time.RFC3339Nano), "worker_id": "raw-loop"}
	b, _ := json.Marshal(r)
	pad := rawResultBytes - (len(b) - len(rawIDPlaceholder) + rawIDLen)
	r["worker_id"] = "raw-loop" + strings.Repeat("-", max(pad, 0))
	b, _ = json.Marshal(r)
	return b
}()

// The template split around the id, so a result is built by one append.
var rawPrefix, rawSuffix = func() ([]byte, []byte) {
	i := bytes.Index(rawResult, []byte(rawIDPlaceholder))
	return rawResult[:i], rawResult[i+len(rawIDPlaceholder):]
}()

// rawResultFor returns a fresh copy of the template carrying id. Fresh: an
// asynchronous publish keeps its message until the PubAck arrives.
func rawResultFor(id string) []byte {
	b := make([]byte, 0, len(rawPrefix)+len(id)+len(rawSuffix))
	b = append(b, rawPrefix...)
	b = append(b, id...)
	return append(b, rawSuffix...)
}

// The raw loop's knobs: at least 500 jobs buffered, and an
// asynchronous publish window far wider than what one PubAck round trip
// lets through, so the loop is bound by the server, not by waiting.
const (
	rawPrefetch   = 1000
	rawMaxPending = 8192
)

// The scratch work-queue stream of the raw loop: the worker's consumer on
// SCORING_JOBS (filter scoring.jobs.>) overlaps any lane there, and a
// work-queue stream refuses a second overlapping consumer.
const (
	rawStream        = "BENCH_RAW_JOBS"
	rawSubjectPrefix = "bench.raw.jobs."
)

// stallWait lets an async publisher wait for PubAcks when its window is
// full (a slow, fsync-always server) instead of failing.
var stallWait = jetstream.WithStallWait(time.Minute)

// rawSetup creates the raw loop's scratch stream: the jobs stream's
// configuration under another name and subject, fresh (a stream of that
// name is the bench's own, left over by an interrupted run).
func (b *run) rawSetup(ctx context.Context) (cleanup func(), err error) {
	sc := topology.Config{}.Streams()[0]
	sc.Name, sc.Subjects, sc.Description = rawStream, []string{rawSubjectPrefix + ">"}, "hybridscore bench: raw JetStream loop (scratch)"
	if err := b.js.DeleteStream(ctx, rawStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	if _, err := b.js.CreateStream(ctx, sc); err != nil {
		return nil, err
	}
	return func() { _ = b.js.DeleteStream(context.WithoutCancel(ctx), rawStream) }, nil
}

// rawOnce runs the ceiling once: n jobs published beforehand to a lane of
// the scratch stream, then drained by rawLoop, each result the template
// with the job's id, stored as form says.
func (b *run) rawOnce(ctx context.Context, n int, tasks, patterns []string, form rawForm) (Throughput, error) {
	lane := "bench-raw-" + nonce()
	subject := rawSubjectPrefix + lane
	if err := b.publishLane(ctx, subject, lane, n, 1, tasks, patterns); err != nil {
		return Throughput{}, err
	}
	results := topology.ResultsPrefix + lane
	if form == perJobSubject {
		results += ".>"
	}
	b.purgeLater(results)
	c, err := b.collect(ctx, results, n)
	if err != nil {
		return Throughput{}, err
	}
	var self func() time.Duration
	if !b.embedded { // embedded, this process is the server and the worker too
		self = cputime.Self
	}
	m := b.meter(self)
	stop, err := b.rawLoop(ctx, subject, form.result(lane))
	if err != nil {
		return Throughput{}, err
	}
	defer stop()
	t, err := c.wait(ctx, nil)
	m.done(&t, n)
	return t, errors.Join(err, stop())
}

// rawForm is how the raw loop stores a result.
type rawForm int

const (
	// withMsgID stores every result of a lane on one subject,
	// scoring.results.<lane>, with Nats-Msg-Id: the ceiling the contract
	// compares the worker with.
	withMsgID rawForm = iota
	// perJobSubject stores each result the worker's way, on its job's own
	// subject with Nats-Expected-Last-Subject-Sequence: 0. The server
	// checks that subject's last sequence for every write, which costs it
	// more than the duplicate window's map does (docs/operations.md).
	perJobSubject
)

// result returns the raw loop's result for a job m of lane.
func (f rawForm) result(lane string) func(m jetstream.Msg) *nats.Msg {
	return func(m jetstream.Msg) *nats.Msg { return f.msg(lane, m.Headers().Get(jetstream.MsgIDHeader)) }
}

// msg is the result of job id of lane.
func (f rawForm) msg(lane, id string) *nats.Msg {
	if f == perJobSubject {
		return &nats.Msg{Subject: job.ResultSubject(lane, id), Data: rawResultFor(id),
			Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}}}
	}
	return &nats.Msg{Subject: topology.ResultsPrefix + lane, Data: rawResultFor(id), Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
}

// rawLoop drains subject of the scratch stream with the fastest raw loop
// of the worker's durability: one Consume callback (PullMaxMessages 1000)
// publishes result(m) through PublishMsgAsync and queues (future, job) in
// a FIFO read by one completer goroutine that acks each job when its own
// PubAck arrives (naks it on a failed publish). No decoding, no scoring, no
// goroutine per job and none waiting on a single PubAck while others could
// be published. It has its own connection, as a worker process does. stop
// ends it once the server has applied every ack (before the consumer is
// deleted and the next scenario starts).
func (b *run) rawLoop(ctx context.Context, subject string, result func(m jetstream.Msg) *nats.Msg) (stop func() error, err error) {
	nc, err := nats.Connect(b.url, nats.Name("hybridscore-bench-raw"))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(rawMaxPending), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		nc.Close()
		return nil, err
	}
	tc := topology.Config{}.ConsumerConfig()
	cons, err := js.CreateConsumer(ctx, rawStream, jetstream.ConsumerConfig{Durable: "bench-raw", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: tc.AckWait, MaxDeliver: tc.MaxDeliver, MaxAckPending: tc.MaxAckPending, FilterSubject: subject})
	if err != nil {
		nc.Close()
		return nil, err
	}
	type inflight struct {
		fut jetstream.PubAckFuture // nil: the publish failed at once
		m   jetstream.Msg
	}
	fifo := make(chan inflight, 2*rawMaxPending)
	completed := make(chan struct{})
	go func() { // the one completer: PubAcks arrive in publish order
		defer close(completed)
		for f := range fifo {
			if f.fut == nil {
				_ = f.m.NakWithDelay(time.Second)
				continue
			}
			select {
			case <-f.fut.Ok():
				_ = f.m.Ack()
			case <-f.fut.Err():
				_ = f.m.NakWithDelay(time.Second)
			}
		}
	}()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		fut, err := js.PublishMsgAsync(result(m), stallWait)
		if err != nil {
			fut = nil
		}
		fifo <- inflight{fut, m}
	}, jetstream.PullMaxMessages(rawPrefetch))
	if err != nil {
		close(fifo)
		<-completed
		_ = js.DeleteConsumer(context.WithoutCancel(ctx), rawStream, "bench-raw")
		nc.Close()
		return nil, err
	}
	stopLoop := func() error {
		defer nc.Close()
		defer func() { _ = js.DeleteConsumer(context.WithoutCancel(ctx), rawStream, "bench-raw") }()
		cc.Stop()
		<-cc.Closed()
		close(fifo)
		<-completed
		for deadline := time.Now().Add(30 * time.Second); ; {
			info, err := cons.Info(ctx)
			if err != nil {
				return err
			}
			if info.NumAckPending == 0 && info.NumPending == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("raw loop: %d jobs not acked, %d not delivered", info.NumAckPending, info.NumPending)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var once sync.Once
	var stopErr error
	return func() error {
		once.Do(func() { stopErr = stopLoop() })
		return stopErr
	}, nil
}

// rawLatency measures publish→result latency (ms) of the raw loop at rate
// for dur: the floor of the steady-rate scenario, what the broker does
// with no worker. Each result is stored the worker's way, on the job's own
// subject with Nats-Expected-Last-Subject-Sequence: 0.
func (b *run) rawLatency(ctx context.Context, rate float64, dur time.Duration, tasks, patterns []string) (p50, p99 float64, err error) {
	cleanup, err := b.rawSetup(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	lane := "bench-rawsteady-" + nonce()
	stop, err := b.rawLoop(ctx, rawSubjectPrefix+lane, perJobSubject.result(lane))
	if err != nil {
		return 0, 0, err
	}
	lat, err := b.latencies(ctx, noWorker{}, rawSubjectPrefix+lane, lane, rate, dur, tasks, patterns, nil)
	if err = errors.Join(err, stop()); err != nil {
		return 0, 0, err
	}
	return producer.Percentile(lat, 0.5), producer.Percentile(lat, 0.99), nil
}

// noWorker stands for the raw loop where a worker is expected.
type noWorker struct{}

func (noWorker) dead() <-chan struct{} { return nil }
func (noWorker) diedError() error      { return nil }
func (noWorker) stop() error           { return nil }
func (noWorker) peakRSSMB() float64    { return 0 }
func (noWorker) rssMB() float64        { return 0 }

// rssMB returns the resident set of this process, in MB.
func rssMB() float64 { return procStatusMB("/proc/self/status", "VmRSS:") }

// procStatusMB reads a kB field of a /proc/<pid>/status file, in MB; 0 when
// it cannot (not Linux, process gone).
func procStatusMB(path, field string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
