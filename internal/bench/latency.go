package bench

// Publish→result latency at a steady rate.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// steady publishes at a fixed rate, to a worker already running, and
// measures publish→result latency as seen by a subscriber of the results
// subject.
func (b *run) steady(ctx context.Context, tasks, patterns, warm []string) (peakMB float64, err error) {
	p50, p99, n, peakMB, err := b.idleLatency(ctx, b.o.Rate, b.o.RateFor, tasks, patterns, warm)
	if err != nil {
		return peakMB, err
	}
	b.rep.LatencyP50, b.rep.LatencyP99, b.rep.LatencyJobs = p50, p99, n
	return peakMB, nil
}

// idleLatency starts a worker (warm cache), waits until it scores a probe
// job, and measures publish→result latency (ms) of interactive jobs
// published at rate for dur.
func (b *run) idleLatency(ctx context.Context, rate float64, dur time.Duration, tasks, patterns, warm []string) (p50, p99 float64, n int, peakMB float64, err error) {
	w, err := b.startWorker(ctx, warm)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer func() {
		var serr error
		peakMB, serr = b.stopWorker(w)
		err = joinStop(err, serr, w)
	}()
	if err := b.ready(ctx, w, tasks, patterns); err != nil {
		return 0, 0, 0, 0, err
	}
	lane := "bench-steady-" + nonce()
	lat, err := b.latencies(ctx, w, topology.JobsPrefix+lane, lane, rate, dur, tasks, patterns, nil)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	return producer.Percentile(lat, 0.5), producer.Percentile(lat, 0.99), len(lat), 0, nil
}

// latencies publishes interactive jobs of lane at a fixed rate for dur, to
// the running worker w, and returns their publish→result latencies (ms)
// as seen by a subscriber of the lane's results subject. published, if
// not nil, is called right after the last job is published.
func (b *run) latencies(ctx context.Context, w worker, subject, lane string, rate float64, dur time.Duration, tasks, patterns []string, published func()) ([]float64, error) {
	b.purgeLater(topology.ResultsPrefix + lane + ".>")
	n := max(1, int(rate*dur.Seconds()))
	sent := make([]atomic.Int64, n)
	lat := make([]float64, 0, n)
	var mu sync.Mutex
	got := make(chan struct{}, 1)
	sub, err := b.nc.Subscribe(topology.ResultsPrefix+lane+".>", func(m *nats.Msg) {
		now := time.Now().UnixNano()
		id := m.Subject // scoring.results.<lane>.<lane>-<i>
		i, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
		if err != nil || i < 0 || i >= n {
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
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		sent[i].Store(time.Now().UnixNano())
		if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: jobFor(lane, i, tasks, patterns),
			Header: nats.Header{jetstream.MsgIDHeader: []string{lane + "-" + strconv.Itoa(i)}}}, stallWait); err != nil {
			return nil, err
		}
	}
	if published != nil {
		published()
	}
	select {
	case <-got:
	case <-w.dead():
		return nil, w.diedError()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("%d of %d results of the %.0f jobs/s lane a minute after the last was published", len(lat), n, rate)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lat), nil
}
