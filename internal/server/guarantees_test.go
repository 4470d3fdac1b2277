package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	srv "github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// A worker whose acks never reach the server stores the result; the job is
// redelivered 5 s later, well after the 2 s duplicate windows, to a second
// worker, which must answer it from the claim instead of storing a second
// result.
func TestRedeliveryAfterTheWindowStoresOneResult(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			// Every ack and in-progress ack of this user is refused.
			{Username: "lossy", Password: "l", Permissions: &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.ACK.>"}}}},
		}}
	ns := startNATS(t, opts)
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// Topology provisioned by the operator: AckWait 5 s, windows of 2 s.
	topo := topology.Config{DuplicateWindow: 2 * time.Second, AckWait: 5 * time.Second}
	if _, err := topology.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	worker := func(user, pass string) (stop func()) {
		cfg := config.Defaults()
		cfg.NATSURL, cfg.NATSUser, cfg.NATSPassword, cfg.HTTPAddr, cfg.Provision = ns.ClientURL(), user, pass, "127.0.0.1:0", false
		cfg.DuplicateWindow, cfg.AckWait = 5*time.Second, 5*time.Second // the consumer's own settings rule
		wctx, cancel := context.WithCancel(ctx)
		s, err := srv.New(wctx, cfg, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(wctx) }()
		return func() { cancel(); <-done }
	}
	payload, _ := json.Marshal(wire("late-1", "late task", "late pattern", 0.4))
	lossy := worker("lossy", "l")
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "scoring.jobs.late", Data: payload, Header: nats.Header{jetstream.MsgIDHeader: []string{"late-1"}}}); err != nil {
		t.Fatal(err)
	}
	results := func() int {
		s, _ := js.Stream(ctx, topology.ResultsStream)
		info, _ := s.Info(ctx, jetstream.WithSubjectFilter("scoring.results.late"))
		return int(info.State.Msgs)
	}
	eventually.True(t, 10*time.Second, func() bool { return results() == 1 }, "the lossy worker's result stored")
	lossy() // the job is still unacked: redelivered when its AckWait ends
	good := worker("admin", "a")
	defer good()
	cons, _ := js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	eventually.True(t, 15*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0 && info.Delivered.Consumer >= 2
	}, "the redelivered job acked by the second worker")
	if n := results(); n != 1 {
		t.Fatalf("%d stored results, want 1", n)
	}
}

func TestSameJobIDOtherContentIsDeadLettered(t *testing.T) {
	h := newHarness(t, nil)
	h.publish("a", wire("twin-1", "the first task", "pattern", 0.5))
	h.wait(10*time.Second, "twin-1")
	// The same id, other content, another lane, past the jobs stream's
	// deduplication (no Nats-Msg-Id).
	other, _ := json.Marshal(wire("twin-1", "another task altogether", "pattern", 0.9))
	h.publishRaw("b", "", other)
	dl := h.deadLetters(1)
	if dl[0].Headers().Get(consumer.HeaderReason) != consumer.ReasonConflict || dl[0].Headers().Get(consumer.HeaderJobID) != "twin-1" ||
		string(dl[0].Data()) != string(other) {
		t.Fatalf("dead letter %v %s", dl[0].Headers(), dl[0].Data())
	}
	if a, b := h.stored("scoring.results.a"), h.stored("scoring.results.b"); a["twin-1"] != 1 || len(b) != 0 {
		t.Fatalf("stored a=%v b=%v", a, b)
	}
	waitMetrics(t, h, `scoring_dead_letters_total{lane="b",reason="job_id_conflict"} 1`)
	// The same content again is one job: acked, not answered twice.
	same, _ := json.Marshal(wire("twin-1", "the first task", "pattern", 0.5))
	h.publishRaw("a", "", same)
	waitMetrics(t, h, `scoring_duplicates_total{lane="a",source="claim"} 1`)
	if a := h.stored("scoring.results.a"); a["twin-1"] != 1 {
		t.Fatalf("stored %v", a)
	}
}

// SCORING_RESULTS refuses every write for 15 s while jobs keep coming: no
// job is dead-lettered or lost, and each gets exactly one result.
func TestResultsOutageDeadLettersNothing(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.LangextractURL = "" })
	ctx := context.Background()
	const n = 600
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("outage-%03d", i)
	}
	for _, id := range ids[:200] {
		h.publish("outage", wire(id, "task "+id, "pattern", 0.5))
	}
	h.wait(20*time.Second, ids[:200]...)
	s, _ := h.client.JS.Stream(ctx, topology.ResultsStream)
	info, _ := s.Info(ctx)
	full := info.Config
	full.MaxMsgs, full.Discard = int64(info.State.Msgs), jetstream.DiscardNew
	if _, err := h.client.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[200:] {
		h.publish("outage", wire(id, "task "+id, "pattern", 0.5))
	}
	// The outage lasts 15 s whatever happens (the fault's length, not a
	// wait for something). That the stream refused results rather than
	// the worker sitting idle: core subscribers saw results it tried to
	// store, and none of those is stored.
	time.Sleep(15 * time.Second)
	if tried := h.resultsOn(ids[200:]); tried == 0 {
		t.Fatal("no result published during the outage")
	}
	if stored := h.stored("scoring.results.outage"); len(stored) != 200 {
		t.Fatalf("%d jobs with a stored result after the outage, want the 200 from before it", len(stored))
	}
	full.MaxMsgs = -1
	if _, err := h.client.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	// Core subscribers saw results the stream refused; count what is stored.
	var stored map[string]int
	eventually.True(t, 60*time.Second, func() bool { stored = h.stored("scoring.results.outage"); return len(stored) == n },
		"a stored result for each of %d jobs", n)
	for _, id := range ids {
		if stored[id] != 1 {
			t.Fatalf("%s stored %d times", id, stored[id])
		}
	}
	dlq, _ := h.client.JS.Stream(ctx, topology.DLQStream)
	if di, _ := dlq.Info(ctx); di.State.Msgs != 0 {
		t.Fatalf("%d dead letters", di.State.Msgs)
	}
}

// langextract answers in 3 s, AckWait is 2 s and only two jobs may wait on
// it at once: the other 18 wait in the worker, kept alive, and none is
// redelivered.
func TestSlowLangextractNeverCausesRedelivery(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.AckWait, c.DuplicateWindow = 2*time.Second, time.Minute
		c.LangextractTimeout, c.WorkerConcurrency = 5, 2
	})
	h.le.SetFaults(langextractd.Faults{Latency: 3 * time.Second})
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("slow-%02d", i)
		h.publish("slow", wire(ids[i], fmt.Sprintf("slow task %d", i), "one shared pattern", 0.5))
	}
	got := h.wait(90*time.Second, ids...)
	for id, r := range got {
		if r.DeliveryAttempt != 1 || r.Status != job.StatusScored {
			t.Fatalf("%s: attempt %d, status %s", id, r.DeliveryAttempt, r.Status)
		}
	}
	if info := h.consumerInfo(); info.NumRedelivered != 0 {
		t.Fatalf("redelivered: %+v", info)
	}
}

var dlqMu sync.Mutex

// deadLetters waits for n dead letters and returns them.
func (h *harness) deadLetters(n int) []jetstream.Msg {
	h.t.Helper()
	dlqMu.Lock()
	defer dlqMu.Unlock()
	ctx := context.Background()
	c, err := h.client.JS.OrderedConsumer(ctx, topology.DLQStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(15*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if len(out) != n {
		h.t.Fatalf("%d dead letters, want %d", len(out), n)
	}
	return out
}
