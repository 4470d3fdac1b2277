package bench

// The worker under test: started with a warm cache in this process or as
// a child process, made ready, driven through one scenario and stopped.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/cputime"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// worker is a running worker: in this process (embedded server) or a child
// process (external server).
type worker interface {
	dead() <-chan struct{} // closed if it stops on its own
	diedError() error
	stop() error
	peakRSSMB() float64 // 0 for an in-process worker
	rssMB() float64     // its resident set now (in-process: this whole process)
}

type inProc struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (w *inProc) dead() <-chan struct{} { return w.done }
func (w *inProc) diedError() error      { return fmt.Errorf("in-process worker stopped: %v", w.err) }
func (w *inProc) stop() error           { w.cancel(); <-w.done; return nil }
func (w *inProc) peakRSSMB() float64    { return 0 }

func (c *child) peakRSSMB() float64 { return c.peakMB }

// startWorker starts a worker with texts already in its cache: in process
// on the embedded server, else the worker executable (its warm file).
func (b *run) startWorker(ctx context.Context, warm []string) (worker, error) {
	if !b.embedded {
		file := ""
		if len(warm) > 0 {
			data, _ := json.Marshal(warm)
			file = filepath.Join(b.tmp, "warm-"+nonce()+".json")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				return nil, err
			}
		}
		return b.startChild(file)
	}
	cfg := config.Defaults()
	cfg.NATSURL = b.url
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.SemanticCacheMaxSize = cacheEntries
	if b.o.Concurrency > 0 {
		cfg.WorkerConcurrency = b.o.Concurrency
	}
	if b.share > 0 {
		cfg.WorkerBulkShare = b.share // a worker process reads WORKER_BULK_SHARE itself
	}
	s, err := server.New(ctx, cfg, b.o.Log)
	if err != nil {
		return nil, err
	}
	if len(warm) > 0 {
		if _, err := s.Cache.Warm(ctx, analysis.Texts(warm, analysis.Query{})); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &inProc{cancel: cancel, done: make(chan struct{})}
	go func() { defer close(w.done); w.err = s.Run(wctx) }()
	return w, nil
}

// stopWorker stops w and notes its peak resident set.
func (b *run) stopWorker(w worker) (peakMB float64, err error) {
	err = w.stop()
	peakMB = w.peakRSSMB()
	b.rep.WorkerPeakRSSMB = max(b.rep.WorkerPeakRSSMB, peakMB)
	return peakMB, err
}

// ready waits until w scores a probe job (on a lane of its own): the
// consumer is bound and the path warm.
func (b *run) ready(ctx context.Context, w worker, tasks, patterns []string) error {
	lane := "bench-ready-" + nonce()
	got := make(chan *nats.Msg, 1)
	sub, err := b.nc.ChanSubscribe(topology.ResultsPrefix+lane+".>", got)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: topology.JobsPrefix + lane, Data: jobFor(lane, 0, tasks, patterns),
		Header: nats.Header{jetstream.MsgIDHeader: []string{lane + "-0"}}}); err != nil {
		return err
	}
	b.purgeLater(topology.ResultsPrefix + lane + ".>")
	select {
	case <-got:
		return nil
	case <-w.dead():
		return w.diedError()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(stallTimeout):
		return fmt.Errorf("no result of a probe job within %s of starting the worker", stallTimeout)
	}
}

// scenario measures one lane of n jobs, published to prefix+lane
// (topology.JobsPrefix: interactive; topology.BulkPrefix: bulk). Published
// beforehand and drained by a worker started afterwards; concurrent:
// published by 10 goroutines to a worker already running.
func (b *run) scenario(ctx context.Context, prefix, lane string, n int, tasks, patterns, warm []string, concurrent bool) (t Throughput, peakMB float64, err error) {
	return b.scenarioOf(ctx, prefix, lane, n, tasks, patterns, warm, concurrent, func(i int) []byte { return jobFor(lane, i, tasks, patterns) })
}

// scenarioOf is scenario with job i's body gen(i).
func (b *run) scenarioOf(ctx context.Context, prefix, lane string, n int, tasks, patterns, warm []string, concurrent bool, gen func(i int) []byte) (t Throughput, peakMB float64, err error) {
	subject := topology.ResultsPrefix + lane + ".>"
	c, err := b.collect(ctx, subject, n)
	if err != nil {
		return Throughput{}, 0, err
	}
	b.purgeLater(subject)
	// After the worker stops: what a failed scenario leaves must not reach
	// the next one's worker.
	defer b.purgeJobs(context.WithoutCancel(ctx), prefix, lane)
	if !concurrent {
		if err := b.publishJobs(ctx, prefix+lane, lane, n, 1, gen); err != nil {
			return Throughput{}, 0, err
		}
	}
	m := b.meter(nil)
	w, err := b.startWorker(ctx, warm)
	if err != nil {
		return Throughput{}, 0, err
	}
	if c, ok := w.(*child); ok {
		m.client, m.client0 = cputime.Process(c.cmd.Process.Pid), 0 // from its start
	}
	if concurrent {
		err = b.ready(ctx, w, tasks, patterns)
		if err == nil {
			err = b.publishJobs(ctx, prefix+lane, lane, n, 10, gen)
		}
	}
	if err == nil {
		t, err = c.wait(ctx, w)
		m.done(&t, n)
	}
	peakMB, serr := b.stopWorker(w)
	return t, peakMB, joinStop(err, serr, w)
}

// joinStop adds the error of stopping w to err, unless err already says
// that w died.
func joinStop(err, stopErr error, w worker) error {
	select {
	case <-w.dead():
		if err != nil {
			return err
		}
	default:
	}
	return errors.Join(err, stopErr)
}
