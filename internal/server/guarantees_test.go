package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/resultstore"
	srv "github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// A worker whose acks never reach the server stores the result; the job is
// redelivered 5 s later, well after the 2 s duplicate windows, to a second
// worker, whose store the server refuses: it repeats the stored answer
// instead of storing a second result.
func TestRedeliveryAfterTheWindowStoresOneResult(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			// Every ack and in-progress ack of this user is refused.
			{Username: "lossy", Password: "l", Permissions: &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.ACK.>"}}}},
		}}
	ns := workertest.NATSWith(t, opts)
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
		info, _ := s.Info(ctx, jetstream.WithSubjectFilter("scoring.results.late.>"))
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
	// The same id, other content, past the jobs stream's deduplication (no
	// Nats-Msg-Id).
	other, _ := json.Marshal(wire("twin-1", "another task altogether", "pattern", 0.9))
	h.publishRaw("a", "", other)
	dl := h.deadLetters(1)
	if dl[0].Headers().Get(consumer.HeaderReason) != consumer.ReasonConflict || dl[0].Headers().Get(consumer.HeaderJobID) != "twin-1" ||
		string(dl[0].Data()) != string(other) {
		t.Fatalf("dead letter %v %s", dl[0].Headers(), dl[0].Data())
	}
	if a := h.stored("scoring.results.a.>"); a["twin-1"] != 1 {
		t.Fatalf("stored %v", a)
	}
	waitMetrics(t, h, `scoring_dead_letters_total{lane="a",reason="job_id_conflict"} 1`)
	// The same content again is one job: acked, not answered twice.
	same, _ := json.Marshal(wire("twin-1", "the first task", "pattern", 0.5))
	h.publishRaw("a", "", same)
	waitMetrics(t, h, `scoring_duplicates_total{lane="a",source="record"} 1`)
	if a := h.stored("scoring.results.a.>"); a["twin-1"] != 1 {
		t.Fatalf("stored %v", a)
	}
}

// A reply subject stored by a stream too small for the answer: the stream
// refuses every copy, the result stays stored on the job's own subject,
// the job is acked, and nothing is dead-lettered (it was dead-lettered as
// max_deliveries, "result not storable", beside its stored result).
func TestReplyStreamRefusingTheCopyKeepsTheResult(t *testing.T) {
	h := newHarness(t, nil)
	h.stop()
	ctx := context.Background()
	if _, err := h.client.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "PIPE", Subjects: []string{"pipe.stored.>"}, MaxMsgSize: 200}); err != nil {
		t.Fatal(err)
	}
	h.start(nil) // knows PIPE from its start
	w := wire("ps-2", "the first task", "pattern", 0.5)
	w.ReplySubject = "pipe.stored.2"
	h.publish("ps", w)
	h.storedOnceEach("ps", []string{"ps-2"}, 10*time.Second)
	eventually.NoError(t, 10*time.Second, func() error {
		if ci := h.consumerInfo(); ci.NumAckPending != 0 || ci.NumPending != 0 || ci.NumRedelivered != 0 {
			return fmt.Errorf("consumer: %d ack pending, %d pending, %d redelivered", ci.NumAckPending, ci.NumPending, ci.NumRedelivered)
		}
		return nil
	}, "the job acked on its first delivery")
	h.noDeadLetters()
	// The same job again: a repeat, whose copy the stream refuses too, is
	// counted as a duplicate, not stored twice.
	data, _ := json.Marshal(w)
	h.publishRaw("ps", "", data)
	waitMetrics(t, h, `scoring_duplicates_total{lane="ps",source="record"} 1`)
	h.storedOnceEach("ps", []string{"ps-2"}, 10*time.Second)
	h.noDeadLetters()
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
	if stored := h.stored("scoring.results.outage.>"); len(stored) != 200 {
		t.Fatalf("%d jobs with a stored result after the outage, want the 200 from before it", len(stored))
	}
	full.MaxMsgs = -1
	if _, err := h.client.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	h.storedOnceEach("outage", ids, 60*time.Second)
	h.noDeadLetters()
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

// Two different jobs whose fields joined with NUL are alike (the earlier
// digest's blind spot) under one job_id: the second is a conflict.
func TestNULPairIsAConflict(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.LangextractURL = "" })
	h.publish("nul", wire("nul-1", "a\x00", "b", 0.5))
	h.wait(10*time.Second, "nul-1")
	other, _ := json.Marshal(wire("nul-1", "a", "\x00b", 0.5))
	h.publishRaw("nul", "", other)
	dl := h.deadLetters(1)
	if dl[0].Headers().Get(consumer.HeaderReason) != consumer.ReasonConflict || string(dl[0].Data()) != string(other) {
		t.Fatalf("dead letter %v %s", dl[0].Headers(), dl[0].Data())
	}
	if n := h.stored("scoring.results.nul.>")["nul-1"]; n != 1 {
		t.Fatalf("%d results stored", n)
	}
}

// A job answered, then submitted again after the duplicate window (a
// pipeline resubmitting after a crash): its requester gets the stored
// answer at once, marked as a repeat, and one result stays stored.
func TestResubmittedJobIsAnsweredAtOnce(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.DuplicateWindow = time.Second; c.LangextractURL = "" })
	ctx := context.Background()
	w := wire("again-1", "Add rate limiting to the login endpoint", "Throttle login attempts per user", 0.7)
	first, err := h.client.Submit(ctx, "again", w, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	replies, _ := h.client.NC.SubscribeSync("_INBOX.resubmit")
	_ = h.client.NC.Flush()
	w.ReplySubject = "_INBOX.resubmit"
	// Inside the window the jobs stream drops the copy; the first publish
	// it takes is the resubmission.
	var sent time.Time
	eventually.NoError(t, 10*time.Second, func() error {
		sent = time.Now()
		dup, err := h.client.Publish(ctx, "again", w)
		if err == nil && dup {
			err = errors.New("still inside the duplicate window")
		}
		return err
	}, "a resubmission past the window")
	m, err := replies.NextMsg(time.Second)
	if err != nil {
		t.Fatalf("no answer within 1 s of the resubmission: %v", err)
	}
	t.Logf("resubmission answered in %s", time.Since(sent).Round(time.Millisecond))
	if m.Header.Get(consumer.HeaderRepeat) != "true" || string(m.Data) != string(first) {
		t.Fatalf("repeat %v %s, want %s", m.Header, m.Data, first)
	}
	// And through Submit, as `publisher submit` does: at once.
	start := time.Now()
	res, err := h.client.Submit(ctx, "again", wire("again-1", w.TaskDescription, w.HistoricalPatternText, 0.7), 10*time.Second)
	if err != nil || string(res) != string(first) {
		t.Fatalf("Submit again: %v %s", err, res)
	}
	t.Logf("Submit of an answered job returned in %s", time.Since(start).Round(time.Millisecond))
	// A requester matching answers by correlation_id gets its own in the
	// repeat; the rest is the stored answer.
	corr, _ := h.client.NC.SubscribeSync("_INBOX.corr")
	_ = h.client.NC.Flush()
	w.ReplySubject, w.CorrelationID = "_INBOX.corr", "second"
	data, _ := json.Marshal(w)
	h.publishRaw("again", "", data)
	m, err = corr.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	_ = json.Unmarshal(m.Data, &got)
	_ = json.Unmarshal(first, &want)
	if got["correlation_id"] != "second" || m.Header.Get(consumer.HeaderRepeat) != "true" {
		t.Fatalf("repeat with another correlation_id: %v %s", m.Header, m.Data)
	}
	delete(got, "correlation_id")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("repeat %v, want the stored answer %v", got, want)
	}
	if n := h.stored("scoring.results.again.>")["again-1"]; n != 1 {
		t.Fatalf("%d results stored", n)
	}
}

// Submit, as `publisher submit` runs it, after the duplicate window: the
// job answered before returns its stored answer, byte for byte, not the
// result the worker computed again (whose store the server refused, and
// which a core subscriber of the result subject sees all the same); the
// same job_id with other content is ErrConflict, within the window (the
// stored answer is another content's) and after it (the worker's
// job_id_conflict dead letter), not the other content's result.
func TestSubmitTakesOnlyTheStoredAnswer(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.DuplicateWindow = time.Second; c.LangextractURL = "" })
	ctx := context.Background()
	w := wire("sub-1", "Add rate limiting to the login endpoint", "Throttle login attempts per user", 0.7)
	first, err := h.client.Submit(ctx, "sub", w, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	attempts, _ := h.client.NC.SubscribeSync(job.ResultSubject("sub", "sub-1"))
	_ = h.client.NC.Flush()
	time.Sleep(1500 * time.Millisecond) // past the window
	again, err := h.client.Submit(ctx, "sub", w, 10*time.Second)
	if err != nil || string(again) != string(first) {
		t.Fatalf("Submit after the window: %v\n%s\nwant the stored\n%s", err, again, first)
	}
	// The refused store did reach a core subscriber of the subject: what
	// Submit must not take.
	if m, err := attempts.NextMsg(5 * time.Second); err != nil || string(m.Data) == string(first) {
		t.Fatalf("a core subscriber saw no refused store (%v): the check above proves nothing", err)
	}
	other := wire("sub-1", "A different task altogether", "Throttle login attempts per user", 0.2)
	// Within the window of a copy just published: the stream drops it, and
	// the stored answer is the first content's.
	if _, err := h.client.Publish(ctx, "sub", w); err != nil {
		t.Fatal(err)
	}
	if res, err := h.client.Submit(ctx, "sub", other, 10*time.Second); !errors.Is(err, producer.ErrConflict) {
		t.Fatalf("other content within the window: %v %s", err, res)
	}
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	res, err := h.client.Submit(ctx, "sub", other, 20*time.Second)
	if !errors.Is(err, producer.ErrConflict) || !strings.Contains(err.Error(), "job_id_conflict") {
		t.Fatalf("other content after the window: %v %s", err, res)
	}
	t.Logf("conflict reported in %s: %v", time.Since(start).Round(time.Millisecond), err)
	// The first content submitted again right after: the other content's
	// job_id_conflict letter, a moment old, is not its letter.
	if again, err := h.client.Submit(ctx, "sub", w, 10*time.Second); err != nil || string(again) != string(first) {
		t.Fatalf("the first content right after another's conflict: %v\n%s", err, again)
	}
	if n := h.stored("scoring.results.sub.>")["sub-1"]; n != 1 {
		t.Fatalf("%d results stored", n)
	}
	// A bad copy, then at once the corrected job: the stream drops the
	// corrected one as a duplicate, and the stored rejection is not its
	// answer.
	bad := wire("sub-2", "A task", "A pattern", 1.5)
	if res, err := h.client.Submit(ctx, "sub", bad, 10*time.Second); err != nil || !strings.Contains(string(res), `"status":"rejected"`) {
		t.Fatalf("the bad copy: %v %s", err, res)
	}
	if res, err := h.client.Submit(ctx, "sub", wire("sub-2", "A task", "A pattern", 0.5), 10*time.Second); !errors.Is(err, producer.ErrConflict) ||
		!strings.Contains(err.Error(), "publish it again") {
		t.Fatalf("the corrected job inside the window: %v %s", err, res)
	}
	// A bad copy of a job answered a moment ago: the stored record is not
	// its answer. And Submit leaves no consumer behind on the server.
	consumers := func() []string {
		var names []string
		for _, name := range []string{topology.ResultsStream, topology.DLQStream} {
			if s, err := h.client.JS.Stream(ctx, name); err == nil {
				for n := range s.ConsumerNames(ctx).Name() {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		return names
	}
	before := consumers()
	if _, err := h.client.Submit(ctx, "sub", wire("sub-3", "A task", "A pattern", 0.5), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if res, err := h.client.Submit(ctx, "sub", wire("sub-3", "A task", "A pattern", 1.5), 10*time.Second); !errors.Is(err, producer.ErrConflict) {
		t.Fatalf("a bad copy inside the window: %v %s", err, res)
	}
	// Deleted when done, or, when Submit ended before its consumer was
	// made (an answer in milliseconds), gone by its inactive threshold
	// (5 s; nats.go's own would keep it 5 minutes).
	eventually.NoError(t, 10*time.Second, func() error {
		if after := consumers(); slices.ContainsFunc(after, func(n string) bool { return !slices.Contains(before, n) }) {
			return fmt.Errorf("consumers before the two Submits %v, after %v", before, after)
		}
		return nil
	}, "no consumer of the Submits left")
}

// Reply subjects that would feed a result back into what the worker
// consumes or manages are refused: the job is rejected, nothing lands
// there.
func TestReservedReplySubjectsAreRejected(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.LangextractURL = "" })
	ctx := context.Background()
	reserved := map[string]string{
		"res-bulk": "scoring.bulk.x", "res-jobs": "scoring.jobs.x", "res-dlq": "scoring.dlq.x", "res-kv": "$KV.SCORING_CLAIMS.x",
		"res-srv": "$SRV.PING", "res-other": "scoring.results.res.someone-else", "res-inbox": h.srv.WorkerInbox() + "x",
	}
	var ids []string
	for id, subject := range reserved {
		w := wire(id, "task", "pattern", 0.5)
		w.ReplySubject = subject
		h.publish("res", w)
		ids = append(ids, id)
	}
	got := h.wait(10*time.Second, ids...)
	for id, r := range got {
		if r.Status != job.StatusRejected || r.Error == nil || r.Error.Code != job.CodeInvalidField {
			t.Errorf("%s (%s): %+v", id, reserved[id], r)
		}
	}
	bulk, _ := h.client.JS.Stream(ctx, topology.BulkStream)
	if info, _ := bulk.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("a result landed in %s: %+v", topology.BulkStream, info.State)
	}
}

// oldDigest is how the previous version digested a job for its claims
// (fields joined with NUL, the reply subject included, xxhash64 in hex):
// written out here as that version wrote it.
func oldDigest(w job.Wire, lang, ctx string) string {
	d := xxhash.New()
	for _, s := range []string{w.TaskDescription, w.HistoricalPatternText, lang, ctx, w.ReplySubject} {
		_, _ = d.WriteString(s)
		_, _ = d.Write([]byte{0})
	}
	var b [8]byte
	v := math.Float64bits(w.VectorSimilarity)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	_, _ = d.Write(b[:])
	return strconv.FormatUint(d.Sum64(), 16)
}

// A worker of this version started on a deployment of the previous one:
// its claims bucket holds the jobs that version answered (with their
// results on scoring.results.<lane>). Such a job coming back is answered
// again from nothing stored twice; other content under its id is a
// conflict; a new job is stored on its own subject.
func TestUpgradeFromClaimsStoresNoSecondResult(t *testing.T) {
	ns := workertest.NATS(t)
	nc := workertest.Connect(t, ns.URL())
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// The previous version's topology: streams, consumers and its claims.
	topo := topology.Config{}
	if _, err := topology.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, topo.LegacyClaimsConfig())
	if err != nil {
		t.Fatal(err)
	}
	old := wire("old-1", "Migrate the session store to Redis", "Move sessions into a shared cache", 0.6)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "scoring.results.up", Data: []byte(`{"job_id":"old-1","status":"scored"}`),
		Header: nats.Header{jetstream.MsgIDHeader: []string{"old-1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, resultstore.LegacyClaimKey("old-1"), []byte(oldDigest(old, job.DefaultLanguage, job.DefaultContext))); err != nil {
		t.Fatal(err)
	}
	workertest.Worker(t, ns.URL(), func(c *config.Config) { c.LangextractURL = "" })
	client, _ := producer.NewClient(nc)
	replies, _ := nc.SubscribeSync("_INBOX.upgrade.>")
	_ = nc.Flush()
	// The old job again (no reply subject then, one now: its old digest
	// had none).
	if _, err := client.Publish(ctx, "up", old); err != nil {
		t.Fatal(err)
	}
	conflict := wire("old-1", "Something else entirely", "pattern", 0.1)
	conflict.ReplySubject = "_INBOX.upgrade.conflict"
	if _, err := client.Publish(ctx, "up", conflict); err != nil { // inside the window: dropped by the jobs stream
		t.Fatal(err)
	}
	fresh := wire("new-1", "Add an audit log", "Record admin actions", 0.5)
	fresh.ReplySubject = "_INBOX.upgrade.new"
	res, err := client.Submit(ctx, "up", fresh, 10*time.Second)
	if err != nil || !strings.Contains(string(res), `"status":"scored"`) {
		t.Fatalf("new job: %v %s", err, res)
	}
	if m, err := replies.NextMsg(time.Second); err != nil || m.Subject != "_INBOX.upgrade.new" {
		t.Fatalf("new job's answer %v %v", m, err)
	}
	// The old job's content under a fresh message (past the jobs stream's
	// duplicate check) and other content under its id.
	again, _ := json.Marshal(old)
	pubRaw := func(data []byte) {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "scoring.jobs.up", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	pubRaw(again)
	other, _ := json.Marshal(conflict)
	pubRaw(other)
	s, _ := js.Stream(ctx, topology.DLQStream)
	eventually.True(t, 10*time.Second, func() bool { info, _ := s.Info(ctx); return info != nil && info.State.Msgs == 1 }, "the conflict dead-lettered")
	dl, err := s.GetMsg(ctx, 1)
	if err != nil || dl.Header.Get(consumer.HeaderReason) != consumer.ReasonConflict {
		t.Fatalf("dead letter %v %v", dl, err)
	}
	if _, err := client.Stored(ctx, "up", "old-1"); !errors.Is(err, producer.ErrNotAnswered) {
		t.Fatalf("a second result for the job the previous version answered: %v", err)
	}
	if _, err := client.Stored(ctx, "up", "new-1"); err != nil {
		t.Fatal(err)
	}
}

// MAX_DELIVER 2, SCORING_RESULTS refusing writes, and the worker shut
// down during the outage with jobs on their last delivery: those are
// given back with a fresh budget, not dead-lettered, and a worker started
// after the outage answers every job once.
func TestShutdownDuringAnOutageDeadLettersNothing(t *testing.T) {
	mutate := func(c *config.Config) {
		c.LangextractURL, c.MaxDeliver, c.OutageRetryFor, c.AckWait, c.DrainTimeout = "", 2, time.Second, 2*time.Second, 3*time.Second
	}
	h := newHarness(t, mutate)
	ctx := context.Background()
	s, _ := h.client.JS.Stream(ctx, topology.ResultsStream)
	full := s.CachedInfo().Config
	full.MaxBytes, full.Discard = 1, jetstream.DiscardNew // refuses every result
	if _, err := h.client.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("down-%03d", i)
		h.publish("down", wire(ids[i], "task "+ids[i], "pattern", 0.5))
	}
	// The outage outlasts WORKER_OUTAGE_RETRY_FOR and AckWait, so jobs come
	// back for their second, last delivery; then the shutdown.
	eventually.True(t, 20*time.Second, func() bool {
		cons, err := h.client.JS.Consumer(ctx, topology.JobsStream, topology.Consumer)
		return err == nil && cons.CachedInfo().NumRedelivered > 0
	}, "jobs on their last delivery")
	h.stop()
	full.MaxBytes = -1
	if _, err := h.client.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	h.start(mutate)
	h.storedOnceEach("down", ids, 60*time.Second)
	h.noDeadLetters()
}
