package consumer

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// fakeMsg is a delivered job message that records what the pump did with it.
type fakeMsg struct {
	subject string
	data    []byte
	header  nats.Header
	md      jetstream.MsgMetadata

	mu         sync.Mutex
	calls      []string
	inProgress atomic.Int32
	settled    chan string // the first ack, nak or term
}

func newFake(lane string, data []byte, attempt int) *fakeMsg {
	f := &fakeMsg{subject: topology.JobsPrefix + lane, data: data, header: nats.Header{}, settled: make(chan string, 8)}
	f.md.NumDelivered = uint64(attempt)
	f.md.Sequence.Stream = uint64(seqs.Add(1))
	return f
}

var seqs atomic.Int64

func (f *fakeMsg) record(s string) error {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
	f.settled <- s
	return nil
}

func (f *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { md := f.md; return &md, nil }
func (f *fakeMsg) Data() []byte                              { return f.data }
func (f *fakeMsg) Headers() nats.Header                      { return f.header }
func (f *fakeMsg) Subject() string                           { return f.subject }
func (f *fakeMsg) Reply() string                             { return "" }
func (f *fakeMsg) Ack() error                                { return f.record("ack") }
func (f *fakeMsg) DoubleAck(context.Context) error           { return f.record("ack") }
func (f *fakeMsg) Nak() error                                { return f.record("nak") }
func (f *fakeMsg) NakWithDelay(d time.Duration) error {
	return f.record(fmt.Sprintf("nak %s", d.Round(time.Second)))
}
func (f *fakeMsg) InProgress() error             { f.inProgress.Add(1); return nil }
func (f *fakeMsg) Term() error                   { return f.record("term") }
func (f *fakeMsg) TermWithReason(r string) error { return f.record("term " + r) }

// outcome waits for the message to be settled.
func (f *fakeMsg) outcome(t *testing.T) string {
	t.Helper()
	select {
	case s := <-f.settled:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("message never settled")
		return ""
	}
}

// pumpEnv is an embedded NATS server with the topology provisioned and a
// Worker running with handler h; messages are handed to it directly.
type pumpEnv struct {
	t   *testing.T
	nc  *nats.Conn
	js  jetstream.JetStream
	w   *Worker
	obs *recorder
}

func newPump(t *testing.T, h Handler, mutate func(*Config)) *pumpEnv {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	topo := topology.Config{DuplicateWindow: time.Second, AckWait: 3 * time.Second, MaxDeliver: 3}
	if _, err := topology.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	obs := &recorder{}
	cfg := Config{AckWait: 3 * time.Second, MaxDeliver: 3, PublishTimeout: time.Second, DrainTimeout: 3 * time.Second, Observer: obs,
		PullWait: 200 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := New(nc, js, cons, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually.True(t, 10*time.Second, w.Ready, "worker ready")
	return &pumpEnv{t: t, nc: nc, js: js, w: w, obs: obs}
}

// stored returns the messages stored on subject in stream.
func (e *pumpEnv) stored(stream, subject string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return out
		}
		out = append(out, m)
		seq = m.Sequence
	}
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e == s {
			return true
		}
	}
	return false
}
func (r *recorder) JobDone(_ Class, lane, status string, _ time.Duration) {
	r.add("done " + lane + " " + status)
}
func (r *recorder) Redelivered(lane string)                              { r.add("redelivered " + lane) }
func (r *recorder) DeadLettered(lane, reason string)                     { r.add("dead " + lane + " " + reason) }
func (r *recorder) Duplicate(lane, source string)                        { r.add("duplicate " + lane + " " + source) }
func (r *recorder) InFlight(int)                                         {}
func (r *recorder) ConsumerPending(Class, uint64, uint64, time.Duration) {}

// publishing answers every delivery with a result for job id = data, sent
// to reply when not empty.
func publishing(digest, reply string) HandlerFunc {
	return func(_ context.Context, d *Delivery) Reply {
		id := string(d.Data)
		return Reply{Disposition: Publish, JobID: id, Digest: digest, Subject: reply,
			Result: []byte(`{"job_id":"` + id + `","digest":"` + digest + `"}`), Status: "scored"}
	}
}

func TestPublishStoresOneResultOnTheJobsSubjectAndAcks(t *testing.T) {
	e := newPump(t, publishing("d1", ""), nil)
	m := newFake("unit", []byte("job-1"), 1)
	e.w.admit(e.w.src[Interactive], m)
	if got := m.outcome(t); got != "ack" {
		t.Fatalf("disposition %q", got)
	}
	rs := e.stored(topology.ResultsStream, "scoring.results.unit.>")
	if len(rs) != 1 || rs[0].Subject != "scoring.results.unit.job-1" || rs[0].Header.Get(HeaderDigest) != "d1" ||
		rs[0].Header.Get(jetstream.MsgIDHeader) != "" {
		t.Fatalf("stored %v", rs)
	}
	if !e.obs.has("done unit scored") {
		t.Fatalf("events %v", e.obs.events)
	}
}

func TestSameJobLaterIsAnsweredAgainWithoutASecondResult(t *testing.T) {
	e := newPump(t, publishing("d1", "_INBOX.requester"), nil)
	replies, err := e.nc.SubscribeSync("_INBOX.requester")
	if err != nil {
		t.Fatal(err)
	}
	first := newFake("unit", []byte("job-2"), 1)
	e.w.admit(e.w.src[Interactive], first)
	first.outcome(t)
	m, err := replies.NextMsg(5 * time.Second)
	if err != nil || m.Header.Get(HeaderRepeat) != "" {
		t.Fatalf("first answer %v %v", m, err)
	}
	// No window to wait for: the job's subject refuses a second result
	// whatever the delay.
	again := newFake("unit", []byte("job-2"), 2)
	e.w.admit(e.w.src[Interactive], again)
	if got := again.outcome(t); got != "ack" {
		t.Fatalf("disposition %q", got)
	}
	m, err = replies.NextMsg(5 * time.Second)
	if err != nil || m.Header.Get(HeaderRepeat) != "true" || string(m.Data) != `{"job_id":"job-2","digest":"d1"}` {
		t.Fatalf("repeat %v %v", m, err)
	}
	if rs := e.stored(topology.ResultsStream, "scoring.results.unit.>"); len(rs) != 1 {
		t.Fatalf("%d results stored", len(rs))
	}
	if !e.obs.has("duplicate unit record") || !e.obs.has("done unit duplicate") {
		t.Fatalf("duplicate not counted: %v", e.obs.events)
	}
}

func TestSameIDOtherContentIsAConflict(t *testing.T) {
	var digest atomic.Value
	digest.Store("d1")
	e := newPump(t, HandlerFunc(func(ctx context.Context, d *Delivery) Reply {
		return publishing(digest.Load().(string), "")(ctx, d)
	}), nil)
	first := newFake("a", []byte("job-3"), 1)
	e.w.admit(e.w.src[Interactive], first)
	first.outcome(t)
	digest.Store("d2")
	other := newFake("a", []byte("job-3"), 1)
	e.w.admit(e.w.src[Interactive], other)
	if got := other.outcome(t); got != "term "+ReasonConflict {
		t.Fatalf("disposition %q", got)
	}
	dl := e.stored(topology.DLQStream, "scoring.dlq.a")
	if len(dl) != 1 || dl[0].Header.Get(HeaderReason) != ReasonConflict || dl[0].Header.Get(HeaderJobID) != "job-3" {
		t.Fatalf("dead letters %v", dl)
	}
	if rs := e.stored(topology.ResultsStream, "scoring.results.a.>"); len(rs) != 1 || rs[0].Header.Get(HeaderDigest) != "d1" {
		t.Fatalf("conflicting job answered: %v", rs)
	}
}

func TestRacingCopiesStoreOneResult(t *testing.T) {
	// Copies of one job in flight at once (a redelivery while the first
	// worker stalls): the server takes the first store and refuses the
	// others, which are then repeats.
	e := newPump(t, publishing("d1", ""), nil)
	var ms []*fakeMsg
	for i := range 8 {
		m := newFake("race", []byte("job-4"), i+1)
		ms = append(ms, m)
		e.w.admit(e.w.src[Interactive], m)
	}
	for _, m := range ms {
		if got := m.outcome(t); got != "ack" {
			t.Fatalf("disposition %q", got)
		}
	}
	if rs := e.stored(topology.ResultsStream, "scoring.results.race.>"); len(rs) != 1 {
		t.Fatalf("%d results", len(rs))
	}
}

func TestDispositions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rep     Reply
		attempt int
		want    string
		event   string
	}{
		{"retry", Reply{Disposition: Retry, Delay: 2 * time.Second, Status: StatusRetried}, 1, "nak 2s", "done l retried"},
		{"requeue", Reply{Disposition: Requeue}, 1, "nak", "done l naked"},
		{"fail", Reply{Disposition: Fail, Reason: ReasonInternal, Message: "panic: boom"}, 1, "nak 1s", "done l naked"},
		{"fail on the last delivery", Reply{Disposition: Fail, Reason: ReasonInternal, Message: "panic: boom"}, 3, "term internal", "dead l internal"},
		{"reject", Reply{Disposition: Reject, JobID: "bad-1", Subject: "scoring.results.l", Result: []byte(`{}`), Status: "rejected",
			Reason: "invalid_json", Message: "not JSON"}, 1, "term invalid_json", "dead l invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPump(t, HandlerFunc(func(context.Context, *Delivery) Reply { return tc.rep }), nil)
			m := newFake("l", []byte("x"), tc.attempt)
			e.w.admit(e.w.src[Interactive], m)
			got := m.outcome(t)
			if tc.want == "nak 1s" && (got == "nak 1s" || got == "nak 0s") {
				got = tc.want // jittered in [0.5 s, 1 s]
			}
			if got != tc.want {
				t.Fatalf("disposition %q, want %q", got, tc.want)
			}
			eventually.True(t, 2*time.Second, func() bool { return e.obs.has(tc.event) }, "event %q", tc.event)
		})
	}
}

func TestHandlerThatBlocksKeepsItsMessageAlive(t *testing.T) {
	release := make(chan struct{})
	e := newPump(t, HandlerFunc(func(_ context.Context, d *Delivery) Reply {
		if !d.MayBlock {
			return Reply{Disposition: NeedsIO}
		}
		<-release
		return Reply{Disposition: Requeue}
	}), func(c *Config) { c.AckWait = 300 * time.Millisecond; c.Concurrency = 1 })
	running, waiting := newFake("l", []byte("a"), 1), newFake("l", []byte("b"), 1)
	e.w.admit(e.w.src[Interactive], running)
	e.w.admit(e.w.src[Interactive], waiting) // waits for the one I/O slot
	// In-progress acks go every AckWait/3: four span more than an AckWait.
	eventually.True(t, 5*time.Second, func() bool { return running.inProgress.Load() >= 4 && waiting.inProgress.Load() >= 4 },
		"four in-progress acks for each message")
	select {
	case s := <-running.settled:
		t.Fatalf("the blocked message was settled: %s", s)
	case s := <-waiting.settled:
		t.Fatalf("the waiting message was settled: %s", s)
	default:
	}
	close(release)
	running.outcome(t)
	waiting.outcome(t)
}

func TestResultsStreamFullIsRetriedInProcess(t *testing.T) {
	e := newPump(t, publishing("d1", ""), nil)
	ctx := context.Background()
	s, _ := e.js.Stream(ctx, topology.ResultsStream)
	full := s.CachedInfo().Config
	full.MaxMsgs, full.Discard = 0, jetstream.DiscardNew
	full.MaxMsgs = 1
	if _, err := e.js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(ctx, "scoring.results.filler", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Every publish reaches core subscribers, stored or refused: a count of
	// the worker's attempts.
	attempts, err := e.nc.SubscribeSync("scoring.results.full.job-6")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	m := newFake("full", []byte("job-6"), 3) // the last delivery: must not be dead-lettered
	e.w.admit(e.w.src[Interactive], m)
	eventually.True(t, 10*time.Second, func() bool { n, _, _ := attempts.Pending(); return n >= 3 }, "three attempts to store the result")
	select {
	case s := <-m.settled:
		t.Fatalf("settled while the stream was full: %s", s)
	default:
	}
	full.MaxMsgs = -1
	if _, err := e.js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	if got := m.outcome(t); got != "ack" {
		t.Fatalf("disposition %q", got)
	}
}

func TestShutdownNaksWhatHasNotStarted(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	nc, _ := nats.Connect(ns.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := topology.Provision(ctx, js, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	cons, _ := js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	var running atomic.Int32
	w, err := New(nc, js, cons, HandlerFunc(func(ctx context.Context, d *Delivery) Reply {
		if !d.MayBlock {
			return Reply{Disposition: NeedsIO}
		}
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Reply{Disposition: Requeue}
	}), Config{Concurrency: 1, DrainTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(rctx) }()
	eventually.True(t, 10*time.Second, w.Ready, "worker ready")
	msgs := make([]*fakeMsg, 20)
	for i := range msgs {
		msgs[i] = newFake("l", []byte("x"), 1)
		w.admit(w.src[Interactive], msgs[i])
	}
	eventually.True(t, 5*time.Second, func() bool { return running.Load() == 1 }, "one message running")
	start := time.Now()
	cancel()
	// All but the one running are naked as soon as the last pull request
	// has expired (a second); that one when the drain timeout cancels it.
	pending := 0
	wait := time.After(1500 * time.Millisecond)
	for i, m := range msgs {
		select {
		case s := <-m.settled:
			if s != "nak" {
				t.Fatalf("message %d: %s", i, s)
			}
		case <-wait:
			pending++
			msgs[0] = m
		}
	}
	if pending != 1 {
		t.Fatalf("%d messages not naked within 1.5 s, want the 1 running", pending)
	}
	<-done
	if el := time.Since(start); el > 3*time.Second+time.Second {
		t.Fatalf("Run took %s to return", el)
	}
	if s := msgs[0].outcome(t); s != "nak" {
		t.Fatalf("running message: %s", s)
	}
}

// A Fail (what the scoring handler answers for a panic) is naked with
// backoff, and dead-lettered as internal on the last delivery.
func TestFailIsInternalNotTheJobsFault(t *testing.T) {
	e := newPump(t, HandlerFunc(func(context.Context, *Delivery) Reply {
		return Reply{Disposition: Fail, JobID: "boom-1", Reason: ReasonInternal, Message: "panic: injected"}
	}), nil)
	job := []byte(`{"job_id":"boom-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`)
	first := newFake("p", job, 1)
	e.w.admit(e.w.src[Interactive], first)
	if got := first.outcome(t); got != "nak 1s" && got != "nak 0s" {
		t.Fatalf("first delivery: %q", got)
	}
	last := newFake("p", job, 3)
	e.w.admit(e.w.src[Interactive], last)
	if got := last.outcome(t); got != "term "+ReasonInternal {
		t.Fatalf("last delivery: %q", got)
	}
	dl := e.stored(topology.DLQStream, "scoring.dlq.p")
	if len(dl) != 1 || dl[0].Header.Get(HeaderReason) != ReasonInternal || dl[0].Header.Get(HeaderJobID) != "boom-1" {
		t.Fatalf("dead letters %v", dl)
	}
	if rs := e.stored(topology.ResultsStream, "scoring.results.p.>"); len(rs) != 0 {
		t.Fatalf("a panicking job was answered: %v", rs)
	}
}

// A flood of large jobs is pulled only as far as MaxHeldBytes allows.
func TestLargeJobsAreHeldWithinTheByteBound(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	e := newPump(t, HandlerFunc(func(ctx context.Context, d *Delivery) Reply {
		if !d.MayBlock {
			return Reply{Disposition: NeedsIO}
		}
		select {
		case <-block:
		case <-ctx.Done():
		}
		return Reply{Disposition: Requeue}
	}), func(c *Config) { c.MaxHeldBytes = 1 }) // raised to twice the maximum payload
	ctx := context.Background()
	big := make([]byte, 3<<20)
	for range 20 {
		if _, err := e.js.Publish(ctx, "scoring.jobs.big", big); err != nil {
			t.Fatal(err)
		}
	}
	limit := 2 * int(e.nc.MaxPayload())
	// The puller has done all it may once the server has delivered only what
	// the worker holds and no pull request of its waits: more room is needed
	// for another.
	cons, err := e.js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	var n, b int
	eventually.NoError(t, 10*time.Second, func() error {
		n, b = e.w.Held()
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if n == 0 || info.NumAckPending != n || info.NumWaiting != 0 {
			return fmt.Errorf("holding %d, %d delivered, %d pull requests waiting", n, info.NumAckPending, info.NumWaiting)
		}
		return nil
	}, "the puller stopped by the byte bound")
	if b > limit {
		t.Fatalf("holding %d jobs, %d bytes; the bound is %d bytes", n, b, limit)
	}
	t.Logf("holding %d of 20 jobs of 3 MiB: %d bytes, bound %d", n, b, limit)
}

// After SCORING_JOBS is recreated its sequences start again; a dead letter
// for the new stream's job at a sequence seen before is stored all the same.
func TestDeadLettersSurviveARecreatedStream(t *testing.T) {
	e := newPump(t, HandlerFunc(func(_ context.Context, d *Delivery) Reply {
		return Reply{Disposition: Reject, JobID: string(d.Data), Subject: "scoring.results.dl", Result: []byte(`{}`), Status: "rejected",
			Reason: "invalid_json", Message: "not JSON"}
	}), nil)
	ctx := context.Background()
	first := newFake("dl", []byte("old-job"), 1)
	first.md.Sequence.Stream = 7
	e.w.admit(e.w.src[Interactive], first)
	first.outcome(t)
	s, _ := e.js.Stream(ctx, topology.JobsStream)
	cfg, created := s.CachedInfo().Config, s.CachedInfo().Created
	if err := e.js.DeleteStream(ctx, topology.JobsStream); err != nil {
		t.Fatal(err)
	}
	// Not an assertion: the new stream must have another creation time,
	// which tells its sequences from the old one's.
	time.Sleep(10 * time.Millisecond)
	recreated, err := e.js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if recreated.CachedInfo().Created.Equal(created) {
		t.Fatal("the recreated stream has the old one's creation time")
	}
	second := newFake("dl", []byte("new-job"), 1)
	second.md.Sequence.Stream = 7
	e.w.admit(e.w.src[Interactive], second)
	if got := second.outcome(t); got != "term invalid_json" {
		t.Fatalf("disposition %q", got)
	}
	dl := e.stored(topology.DLQStream, "scoring.dlq.dl")
	if len(dl) != 2 || string(dl[1].Data) != "new-job" {
		t.Fatalf("%d dead letters stored, want both", len(dl))
	}
}

// A job given back on its last delivery (shutdown during scoring) is
// published again with a fresh budget and its delivery acked: a nak would
// end it.
func TestGiveBackOnTheLastDeliveryRequeues(t *testing.T) {
	// The fakes give back; what the worker pulls from the stream itself
	// (the job as published, and its copy) it holds.
	e := newPump(t, HandlerFunc(func(ctx context.Context, d *Delivery) Reply {
		if d.Header.Get("X-Fake") != "" && d.Header.Get(HeaderRequeues) == "" {
			return Reply{Disposition: Requeue, JobID: "back-1", Message: "shutdown during scoring"}
		}
		return holding(ctx, d)
	}), nil)
	ctx := context.Background()
	// The message as the jobs stream holds it (the fake carries its
	// sequence and headers).
	ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "scoring.jobs.back", Data: []byte("job back-1"),
		Header: nats.Header{jetstream.MsgIDHeader: []string{"back-1"}, "X-Keep": []string{"me"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := newFake("back", []byte("job back-1"), 3)
	m.md.Sequence.Stream = ack.Sequence
	m.header = nats.Header{jetstream.MsgIDHeader: []string{"back-1"}, "X-Keep": []string{"me"}, "X-Fake": []string{"1"}}
	e.w.admit(e.w.src[Interactive], m)
	if got := m.outcome(t); got != "ack" {
		t.Fatalf("last delivery given back: %q", got)
	}
	rs := e.stored(topology.JobsStream, "scoring.jobs.back")
	if len(rs) != 2 || string(rs[1].Data) != "job back-1" || rs[1].Header.Get(HeaderRequeues) != "1" || rs[1].Header.Get("X-Keep") != "me" ||
		rs[1].Header.Get(jetstream.MsgIDHeader) == "back-1" {
		t.Fatalf("jobs stream %v", rs)
	}
	// Not on the last delivery: a nak, as ever.
	m2 := newFake("back", []byte("job back-2"), 1)
	m2.header.Set("X-Fake", "1")
	e.w.admit(e.w.src[Interactive], m2)
	if got := m2.outcome(t); got != "nak" {
		t.Fatalf("given back early: %q", got)
	}
}

// The server's max-deliveries advisory for a job no worker finished (its
// worker died on the last delivery) requeues it with a fresh budget, up to
// MaxRequeues times; then it is dead-lettered.
func TestExhaustedJobIsRequeuedThenDeadLettered(t *testing.T) {
	// The worker holds what it pulls without finishing it, as a worker that
	// is about to die does.
	e := newPump(t, HandlerFunc(holding), nil)
	ctx := context.Background()
	jobs, _ := e.js.Stream(ctx, topology.JobsStream)
	dlq, _ := e.js.Stream(ctx, topology.DLQStream)
	for _, tc := range []struct {
		requeues int
		dead     bool
	}{{0, false}, {MaxRequeues, true}} {
		h := nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprint("ex-", tc.requeues)}}
		if tc.requeues > 0 {
			h.Set(HeaderRequeues, strconv.Itoa(tc.requeues))
		}
		before, _ := dlq.Info(ctx)
		ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "scoring.jobs.ex", Data: []byte(fmt.Sprint("job ", tc.requeues)), Header: h})
		if err != nil {
			t.Fatal(err)
		}
		// What the server announces once the job's last delivery ran out.
		adv := fmt.Sprintf(`{"stream":"%s","consumer":"%s","stream_seq":%d,"deliveries":3}`, topology.JobsStream, topology.Consumer, ack.Sequence)
		if err := e.nc.Publish(maxDeliveriesSubject(topology.JobsStream, topology.Consumer), []byte(adv)); err != nil {
			t.Fatal(err)
		}
		eventually.True(t, 5*time.Second, func() bool { _, err := jobs.GetMsg(ctx, ack.Sequence); return err != nil }, "the exhausted message removed")
		after, _ := dlq.Info(ctx)
		if dead := after.State.Msgs > before.State.Msgs; dead != tc.dead {
			t.Fatalf("after %d requeues: dead-lettered %v", tc.requeues, dead)
		}
		if !tc.dead {
			m, err := jobs.GetLastMsgForSubject(ctx, "scoring.jobs.ex")
			if err != nil || m.Header.Get(HeaderRequeues) != "1" || string(m.Data) != "job 0" {
				t.Fatalf("requeued %v %v", m, err)
			}
		}
	}
}

// holding is a Handler that holds every job it gets until shutdown, then
// gives it back.
func holding(ctx context.Context, d *Delivery) Reply {
	if !d.MayBlock {
		return Reply{Disposition: NeedsIO}
	}
	<-ctx.Done()
	return Reply{Disposition: Requeue}
}

// admit holds a message of any kind, as the puller's callback holds a
// pulled one: the tests' way in.
func (w *Worker) admit(src *source, m jetstream.Msg) { w.hold(src, &item{}, m) }
