package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
	"github.com/hybridscore/hybridscore/schemas"
)

// harness is a real NATS server, a langextract-compatible server with
// injectable faults, one in-process worker, and a client collecting every
// result published under scoring.results.>.
type harness struct {
	t       *testing.T
	nats    *natsembed.Server
	le      *langextractd.Server
	leURL   string
	srv     *server.Server
	client  *producer.Client
	stop    func()
	log     *zap.Logger
	mu      sync.Mutex
	results map[string][]job.Result
	raw     map[string][]byte
}

func newHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	return newHarnessLog(t, mutate, zap.NewNop())
}

func newHarnessLog(t *testing.T, mutate func(*config.Config), log *zap.Logger) *harness {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	h := &harness{t: t, nats: ns, log: log, results: map[string][]job.Result{}, raw: map[string][]byte{}}
	h.le = langextractd.New(langextractd.Faults{})
	hs := httptest.NewServer(h.le)
	t.Cleanup(hs.Close)
	t.Cleanup(h.le.Close)
	h.leURL = hs.URL
	nc := workertest.Connect(t, ns.URL())
	if h.client, err = producer.NewClient(nc); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("scoring.results.>", func(m *nats.Msg) {
		var r job.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Errorf("result is not JSON: %s", m.Data)
			return
		}
		if err := schemas.Validate("result", m.Data); err != nil {
			t.Errorf("result fails the schema: %v\n%s", err, m.Data)
		}
		// The stored results only: a copy sent to a reply subject under
		// scoring.results. is not counted twice.
		if !strings.HasSuffix(m.Subject, "."+job.ResultToken(r.JobID)) || strings.Count(m.Subject, ".") != 3 {
			return
		}
		if m.Header.Get(consumer.HeaderDigest) == "" && r.Status != job.StatusRejected {
			t.Errorf("result %s has no digest", r.JobID)
		}
		h.mu.Lock()
		h.results[r.JobID] = append(h.results[r.JobID], r)
		h.raw[r.JobID] = append([]byte(nil), m.Data...)
		h.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	h.start(mutate)
	return h
}

func (h *harness) config(mutate func(*config.Config)) config.Config {
	cfg := config.Defaults()
	cfg.NATSURL = h.nats.URL()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LangextractURL = h.leURL
	cfg.LangextractTimeout = 0.5
	cfg.LangextractMaxRetries = 1
	cfg.RetryBackoff = 100 * time.Millisecond
	cfg.WorkerConcurrency = 16
	cfg.AdminToken = "s3cret"
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// start runs a worker; stop (also at cleanup) drains it.
func (h *harness) start(mutate func(*config.Config)) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, h.config(mutate), h.log)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	h.srv = s
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("worker Run: %v", err)
			}
		})
	}
	h.t.Cleanup(h.stop)
	eventually.True(h.t, 10*time.Second, s.Ready, "worker ready")
}

func (h *harness) publish(lane string, w job.Wire) {
	h.t.Helper()
	if _, err := h.client.Publish(context.Background(), lane, w); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) publishRaw(lane, msgID string, data []byte) {
	h.t.Helper()
	m := &nats.Msg{Subject: topology.JobsPrefix + lane, Data: data, Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := h.client.JS.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// wait returns the results of ids once each has at least one.
func (h *harness) wait(timeout time.Duration, ids ...string) map[string]job.Result {
	h.t.Helper()
	var out map[string]job.Result
	eventually.NoError(h.t, timeout, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		out = map[string]job.Result{}
		for _, id := range ids {
			if rs := h.results[id]; len(rs) > 0 {
				out[id] = rs[len(rs)-1]
			}
		}
		if len(out) != len(ids) {
			return fmt.Errorf("%d of %d results", len(out), len(ids))
		}
		return nil
	}, "a result for each job")
	return out
}

func (h *harness) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.results[id])
}

// stored counts the results stored in SCORING_RESULTS per job id.
func (h *harness) stored(subject string) map[string]int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := h.client.JS.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		h.t.Fatal(err)
	}
	counts := map[string]int{}
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			h.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var r job.Result
			_ = json.Unmarshal(m.Data(), &r)
			counts[r.JobID]++
		}
		if n == 0 {
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				h.t.Fatal(err)
			}
			return counts
		}
	}
}

func (h *harness) consumerInfo() *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.client.JS.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

func wire(id, task, pattern string, vector float64) job.Wire {
	return job.Wire{JobID: id, TaskDescription: task, HistoricalPatternText: pattern, VectorSimilarity: vector}
}

// storedOnceEach waits until the lane's results hold one for each of ids
// (core subscribers also see results a stream refused: what is stored is
// counted), and fails on a job stored other than once.
func (h *harness) storedOnceEach(lane string, ids []string, timeout time.Duration) {
	h.t.Helper()
	var stored map[string]int
	eventually.True(h.t, timeout, func() bool { stored = h.stored("scoring.results." + lane + ".>"); return len(stored) == len(ids) },
		"a stored result for each of %d jobs", len(ids))
	for _, id := range ids {
		if stored[id] != 1 {
			h.t.Fatalf("%s stored %d times", id, stored[id])
		}
	}
}

// noDeadLetters fails when the dead-letter stream holds anything.
func (h *harness) noDeadLetters() {
	h.t.Helper()
	ctx := context.Background()
	dlq, err := h.client.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		h.t.Fatal(err)
	}
	di, err := dlq.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if di.State.Msgs != 0 {
		h.t.Fatalf("%d dead letters", di.State.Msgs)
	}
}
