package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/topology"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// rawResult is a result of the size a worker publishes.
var rawResult = func() []byte {
	v, p, w := 0.83, 0.61, 0.6
	r := job.Result{SchemaVersion: 1, JobID: "bench-raw-000000", Status: job.StatusScored, HybridScore: &v, VectorScore: &v, PatternScore: &p,
		VectorWeight: &w, PatternWeight: &p, Confidence: &p, ScoreAgreement: &p, ComponentScores: &job.Components{Concept: 0.5},
		UsedPatterns: true, Cache: &job.CacheInfo{Task: "memory", Pattern: "memory"}, WorkerID: "raw-loop", DeliveryAttempt: 1,
		LatencyMS: 0.5, ScoredAt: job.Timestamp(time.Now())}
	return r.AppendJSON(nil)
}()

// raw runs CONTRACT.md §8's loop: the jobs of one lane published beforehand,
// pulled by a temporary consumer with the worker's prefetch and concurrency,
// each answered by storing a same-size result with Nats-Msg-Id and acked
// once the PubAck arrives. No decoding, no scoring. On a server whose
// SCORING_JOBS already has the worker's consumer (whose filter overlaps any
// lane), it uses a scratch work-queue stream of the same configuration.
func (b *run) raw(ctx context.Context, embedded bool) error {
	// A short unmeasured pass first: the first writes to a fresh store are
	// slower, and the ceiling should not be measured on a cold server.
	if _, err := b.rawOnce(ctx, embedded, max(b.o.Jobs/10, 500)); err != nil {
		return err
	}
	var err error
	b.rep.Raw, err = b.rawOnce(ctx, embedded, b.o.Jobs)
	return err
}

// stallWait lets an async publisher wait for PubAcks when 4096 are
// outstanding (a slow, fsync-always server) instead of failing.
var stallWait = jetstream.WithStallWait(time.Minute)

func (b *run) rawOnce(ctx context.Context, embedded bool, n int) (Throughput, error) {
	lane := "bench-raw-" + nonce()
	stream, subject := topology.JobsStream, topology.JobsPrefix+lane
	if !embedded {
		sc := topology.Config{}.Streams()[0]
		sc.Name, sc.Subjects = "BENCH_RAW_JOBS", []string{"bench.raw.jobs.>"}
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return Throughput{}, err
		}
		defer func() { _ = b.js.DeleteStream(context.WithoutCancel(ctx), sc.Name) }()
		stream, subject = sc.Name, "bench.raw.jobs."+lane
	}
	ts := texts("raw", 100)
	for i := range n {
		if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: jobFor(lane, i, ts),
			Header: nats.Header{jetstream.MsgIDHeader: []string{lane + "-" + strconv.Itoa(i)}}}, stallWait); err != nil {
			return Throughput{}, err
		}
	}
	<-b.js.PublishAsyncComplete()
	resultSubject := topology.ResultsPrefix + lane
	c, err := b.collect(ctx, resultSubject, n)
	if err != nil {
		return Throughput{}, err
	}
	cons, err := b.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "bench-raw", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 10000, FilterSubject: subject})
	if err != nil {
		return Throughput{}, err
	}
	defer func() { _ = b.js.DeleteConsumer(context.WithoutCancel(ctx), stream, "bench-raw") }()
	concurrency := b.o.Concurrency
	if concurrency <= 0 {
		concurrency = 128
	}
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				id := m.Headers().Get(jetstream.MsgIDHeader)
				data := bytes.Replace(rawResult, []byte("bench-raw-000000"), []byte(id), 1)
				fut, err := b.js.PublishMsgAsync(&nats.Msg{Subject: resultSubject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}, stallWait)
				if err != nil {
					_ = m.NakWithDelay(time.Second)
					continue
				}
				select {
				case <-fut.Ok():
					_ = m.Ack()
				case <-fut.Err():
					_ = m.NakWithDelay(time.Second)
				}
			}
		}()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m }, jetstream.PullMaxMessages(concurrency))
	if err != nil {
		close(msgs)
		wg.Wait()
		return Throughput{}, err
	}
	t, err := c.wait(ctx, 5*time.Minute)
	cc.Stop()
	<-cc.Closed()
	close(msgs)
	wg.Wait()
	return t, err
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
