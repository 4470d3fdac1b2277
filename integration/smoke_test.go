//go:build containers

package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// TestWorkerContainer runs the worker image against NATS and Redis
// containers with the built-in analyzer: it provisions the contract's
// topology, reports healthy, scores jobs (one stored result each), and
// answers a bad job with "rejected" plus a dead letter.
func TestWorkerContainer(t *testing.T) {
	s := newStack(t, 2*time.Minute)
	n := s.startNATS("nats", natsArgs())
	s.startRedis()
	w := s.startWorker("w1", map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "6379"})
	c := connect(t, s.endpoint(n, "4222/tcp", "nats"))
	ctx := s.ctx

	// Topology (CONTRACT §1), as provisioned by the worker.
	for name, ret := range map[string]jetstream.RetentionPolicy{
		topology.JobsStream: jetstream.WorkQueuePolicy, topology.ResultsStream: jetstream.LimitsPolicy, topology.DLQStream: jetstream.LimitsPolicy,
	} {
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if cfg := st.CachedInfo().Config; cfg.Retention != ret || cfg.Duplicates != time.Minute {
			t.Errorf("stream %s: retention %v, duplicate window %s; want %v, 1m (DUPLICATE_WINDOW)", name, cfg.Retention, cfg.Duplicates, ret)
		}
	}
	cons, err := c.js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		t.Fatalf("consumer %s: %v", topology.Consumer, err)
	}
	if cfg := cons.CachedInfo().Config; cfg.Durable != topology.Consumer || cfg.DeliverSubject != "" ||
		cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.AckWait != 5*time.Second {
		t.Errorf("consumer config: durable %q, deliver subject %q, ack %v, AckWait %s; want a durable explicit-ack pull consumer with AckWait 5s (ACK_WAIT)",
			cfg.Durable, cfg.DeliverSubject, cfg.AckPolicy, cfg.AckWait)
	}

	// HTTP endpoints.
	eventually.NoError(t, 10*time.Second, func() error {
		rep, code, err := w.health()
		if err != nil {
			return err
		}
		if code != http.StatusOK || rep.Status != "healthy" || rep.Components["nats"] != "healthy" || rep.Components["redis"] != "healthy" {
			return fmt.Errorf("%d %+v", code, rep)
		}
		return nil
	}, "/health 200 healthy with nats and redis healthy")
	for _, p := range []string{"/livez", "/readyz"} {
		if code, _, err := w.get(p); err != nil || code != http.StatusOK {
			t.Errorf("%s: %d %v", p, code, err)
		}
	}
	if v, ok, err := w.metric("redis_up", ""); err != nil || !ok || v != 1 {
		t.Errorf("redis_up = %v (present %v, %v); want 1", v, ok, err)
	}

	// 60 jobs over 12 texts of each kind, and one job lacking its texts.
	const lane = "smoke"
	jobs := make([]job.Wire, 60)
	for i := range jobs {
		jobs[i] = job.Wire{JobID: fmt.Sprintf("smoke-%03d", i), TaskDescription: taskText("smoke", i%12),
			HistoricalPatternText: patternText("smoke", i%12), VectorSimilarity: 0.5}
	}
	c.publish(ctx, lane, jobs)
	if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: topology.JobsPrefix + lane, Data: []byte(`{"job_id":"smoke-bad","vector_similarity":0.5}`),
		Header: nats.Header{jetstream.MsgIDHeader: []string{"smoke-bad"}}}); err != nil {
		t.Fatalf("publish bad job: %v", err)
	}
	all := append(jobs, job.Wire{JobID: "smoke-bad"})
	took := c.waitDone(ctx, lane, len(all), time.Minute)
	rs := exactlyOnce(t, all, c.results(ctx, lane))
	bad := rs["smoke-bad"]
	delete(rs, "smoke-bad")
	requireScored(t, rs)
	if bad.Status != job.StatusRejected || bad.Error == nil || bad.Error.Code != job.CodeMissingField {
		t.Errorf("bad job: status %s, error %+v; want rejected, missing_field", bad.Status, bad.Error)
	}
	tiers := tally(rs, func(r result) string {
		if r.Cache == nil {
			return "<nil>"
		}
		return r.Cache.Task
	})
	if tiers["<nil>"] > 0 || tiers["miss"] == 0 || tiers["miss"] > 12 {
		t.Errorf("task cache tiers %v: want a cache report on every result and at most 12 misses (12 distinct texts)", tiers)
	}
	dlq, err := c.js.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatalf("stream %s: %v", topology.DLQStream, err)
	}
	subj := topology.DLQPrefix + lane
	info, err := dlq.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil || info.State.Subjects[subj] != 1 {
		t.Errorf("dead letters on %s: %v (%v); want 1", subj, info.State.Subjects, err)
	}
	t.Logf("61 jobs answered in %s after publishing; task cache tiers %v", took.Round(time.Millisecond), tiers)
}
