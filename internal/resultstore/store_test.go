package resultstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

type env struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream
	s  *Store
}

// newEnv starts an embedded server with the project's streams (or uses
// url) and a running Store.
func newEnv(t *testing.T, url string, topo topology.Config) *env {
	t.Helper()
	if url == "" {
		ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Stop)
		url = ns.URL()
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := topology.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, nc: nc, js: js}
}

func (e *env) start(cfg Config) *Store {
	e.t.Helper()
	e.s = New(e.nc, e.js, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- e.s.Run(ctx, ready) }()
	e.t.Cleanup(func() { cancel(); <-done })
	<-ready
	return e.s
}

// stored returns every message stored on the job's subject.
func (e *env) stored(lane, id string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(job.ResultSubject(lane, id)))
		if err != nil {
			return out
		}
		out = append(out, m)
		seq = m.Sequence
	}
}

func req(id, digest, reply string) Request {
	return Request{Lane: "l", JobID: id, Digest: digest, Reply: reply, Result: []byte(`{"job_id":"` + id + `","d":"` + digest + `"}`)}
}

func (e *env) do(r Request) Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.s.Do(ctx, r)
}

func TestOneStoredResultRepeatsAndConflicts(t *testing.T) {
	e := newEnv(t, "", topology.Config{})
	e.start(Config{Timeout: 2 * time.Second})
	replies, _ := e.nc.SubscribeSync("_INBOX.req.>")
	_ = e.nc.Flush()

	if r := e.do(req("j.1", "d1", "_INBOX.req.1")); r.Outcome != Stored {
		t.Fatalf("first: %+v", r)
	}
	m, err := replies.NextMsg(5 * time.Second)
	if err != nil || m.Header.Get(HeaderRepeat) != "" || m.Header.Get(HeaderDigest) != "d1" {
		t.Fatalf("first answer %v %v", m, err)
	}
	// The same job again, waiting on another inbox (a resubmission): its
	// stored answer is sent again, and nothing is stored.
	if r := e.do(req("j.1", "d1", "_INBOX.req.2")); r.Outcome != Repeated || r.Legacy {
		t.Fatalf("again: %+v", r)
	}
	m, err = replies.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "_INBOX.req.2" || m.Header.Get(HeaderRepeat) != "true" || string(m.Data) != `{"job_id":"j.1","d":"d1"}` {
		t.Fatalf("repeat %v %v", m, err)
	}
	// Other content under the same id: a conflict, never an answer.
	if r := e.do(req("j.1", "d2", "_INBOX.req.3")); r.Outcome != Conflict {
		t.Fatalf("other content: %+v", r)
	}
	if m, err := replies.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("the conflicting job was answered: %v", m)
	}
	if rs := e.stored("l", "j.1"); len(rs) != 1 || rs[0].Subject != "scoring.results.l.j~1" {
		t.Fatalf("stored %v", rs)
	}
	// Another lane is another job.
	if r := e.do(Request{Lane: "other", JobID: "j.1", Digest: "d2", Result: []byte(`{}`)}); r.Outcome != Stored {
		t.Fatalf("other lane: %+v", r)
	}
}

func TestCopiesRacingStoreOnce(t *testing.T) {
	// A worker that stalled past its AckWait and the one the job was
	// redelivered to both store: the server takes one.
	e := newEnv(t, "", topology.Config{})
	e.start(Config{})
	var wg sync.WaitGroup
	results := make([]Result, 16)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = e.do(req("race", "d", "")) }()
	}
	wg.Wait()
	stored := 0
	for _, r := range results {
		switch r.Outcome {
		case Stored:
			stored++
		case Repeated:
		default:
			t.Fatalf("outcome %+v", r)
		}
	}
	if n := len(e.stored("l", "race")); stored != 1 || n != 1 {
		t.Fatalf("%d stores reported, %d stored", stored, n)
	}
}

func TestAnswerLostAfterStoreIsARepeatOnRetry(t *testing.T) {
	// The store's PubAck never reached the worker (it stalled, or the
	// connection dropped): the retry is refused and finds its own result.
	e := newEnv(t, "", topology.Config{})
	s := e.start(Config{})
	r := req("lost", "d", "")
	h := nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}, HeaderDigest: []string{"d"}}
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: job.ResultSubject("l", "lost"), Data: r.Result, Header: h}); err != nil {
		t.Fatal(err)
	}
	op := &Op{Request: r}
	news := make(chan struct{}, 1)
	s.Start(op, func(*Op) { news <- struct{}{} })
	for {
		<-news
		if res, done := s.Advance(op); done {
			if res.Outcome != Repeated {
				t.Fatalf("outcome %+v", res)
			}
			break
		}
	}
	if n := len(e.stored("l", "lost")); n != 1 {
		t.Fatalf("%d stored", n)
	}
}

func TestRejectionIsNotTheRecord(t *testing.T) {
	// A malformed job answered as rejected, then corrected under the same
	// id: the corrected one is scored and stored after the rejection.
	e := newEnv(t, "", topology.Config{})
	e.start(Config{})
	ctx := context.Background()
	if err := e.s.Reject(ctx, Request{Lane: "l", JobID: "fixme", Result: []byte(`{"status":"rejected"}`)}); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req("fixme", "d", "")); r.Outcome != Stored {
		t.Fatalf("corrected job: %+v", r)
	}
	if r := e.do(req("fixme", "d", "")); r.Outcome != Repeated {
		t.Fatalf("corrected job again: %+v", r)
	}
	rs := e.stored("l", "fixme")
	if len(rs) != 2 || rs[0].Header.Get(HeaderStatus) != "rejected" || rs[1].Header.Get(HeaderDigest) != "d" {
		t.Fatalf("stored %v", rs)
	}
}

// A bad copy of a job answered before is rejected to its requester but
// not stored: behind the record it would stand last on the subject, and
// the next copy with other content would be stored as a second result
// instead of being refused as a conflict. Two rejections in a row are both
// stored (each expecting the last), and a record stored behind rejections
// by an earlier version is still found behind a rejection stored after it.
func TestRejectionNeverStandsBehindTheRecord(t *testing.T) {
	e := newEnv(t, "", topology.Config{})
	e.start(Config{Timeout: 2 * time.Second})
	ctx := context.Background()
	replies, _ := e.nc.SubscribeSync("_INBOX.rej.>")
	_ = e.nc.Flush()
	rejection := func(id, reply string) Request {
		return Request{Lane: "l", JobID: id, Reply: reply, Result: []byte(`{"job_id":"` + id + `","status":"rejected"}`)}
	}
	if r := e.do(req("rec", "d1", "")); r.Outcome != Stored {
		t.Fatalf("first: %+v", r)
	}
	if err := e.s.Reject(ctx, rejection("rec", "_INBOX.rej.1")); err != nil {
		t.Fatal(err)
	}
	if m, err := replies.NextMsg(5 * time.Second); err != nil || m.Header.Get(HeaderStatus) != "rejected" {
		t.Fatalf("the bad copy's requester heard nothing: %v %v", m, err)
	}
	if rs := e.stored("l", "rec"); len(rs) != 1 || rs[0].Header.Get(HeaderDigest) != "d1" {
		t.Fatalf("a rejection stored behind the record: %d messages", len(rs))
	}
	if r := e.do(req("rec", "d2", "")); r.Outcome != Conflict {
		t.Fatalf("other content after the bad copy: %+v", r)
	}

	for range 2 {
		if err := e.s.Reject(ctx, rejection("twice", "")); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.do(req("twice", "d", "")); r.Outcome != Stored {
		t.Fatalf("corrected after two rejections: %+v", r)
	}
	if rs := e.stored("l", "twice"); len(rs) != 3 || rs[2].Header.Get(HeaderDigest) != "d" {
		t.Fatalf("stored %d", len(rs))
	}
	// However many bad copies a producer sent, the corrected job is
	// stored (and the next copy still finds it).
	for range 80 {
		if err := e.s.Reject(ctx, rejection("many", "")); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.do(req("many", "d", "")); r.Outcome != Stored {
		t.Fatalf("corrected after 80 rejections: %+v", r)
	}
	if r := e.do(req("many", "d2", "")); r.Outcome != Conflict {
		t.Fatalf("other content after 80 rejections and the record: %+v", r)
	}

	// As an earlier version left it: the record, then a rejection after it.
	if r := e.do(req("old", "d1", "")); r.Outcome != Stored {
		t.Fatalf("old: %+v", r)
	}
	if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: job.ResultSubject("l", "old"), Data: []byte(`{}`),
		Header: nats.Header{HeaderStatus: []string{"rejected"}}}); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req("old", "d2", "")); r.Outcome != Conflict {
		t.Fatalf("other content behind an earlier version's rejection: %+v", r)
	}
	if r := e.do(req("old", "d1", "")); r.Outcome != Repeated {
		t.Fatalf("the same content behind an earlier version's rejection: %+v", r)
	}
	if rs := e.stored("l", "old"); len(rs) != 2 {
		t.Fatalf("stored %d", len(rs))
	}
}

func TestReplySubjectStoredByAStreamGetsAPubAck(t *testing.T) {
	e := newEnv(t, "", topology.Config{})
	ctx := context.Background()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "REPLIES", Subjects: []string{"pipeline.*.done"}}); err != nil {
		t.Fatal(err)
	}
	s := e.start(Config{})
	if !s.streams.covers("pipeline.a.done") || s.streams.covers("pipeline.a.other") || !s.streams.covers("scoring.results.x.y.z") {
		t.Fatal("stream table")
	}
	if r := e.do(req("copy-1", "d", "pipeline.a.done")); r.Outcome != Stored {
		t.Fatalf("%+v", r)
	}
	st, _ := e.js.Stream(ctx, "REPLIES")
	m, err := st.GetLastMsgForSubject(ctx, "pipeline.a.done")
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != CopyMsgID("l", "copy-1", "d") {
		t.Fatalf("copy %v %v", m, err)
	}
	copies := func(subject string) uint64 {
		t.Helper()
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subject]
	}
	// The same answer sent again (a repeat) is stored once there; another
	// answer for the same job_id (on another lane; a corrected job after
	// its rejection) is stored too, not dropped as a duplicate.
	if r := e.do(req("copy-1", "d", "pipeline.a.done")); r.Outcome != Repeated || copies("pipeline.a.done") != 1 {
		t.Fatalf("repeat: %+v, %d copies", r, copies("pipeline.a.done"))
	}
	other := req("copy-1", "d", "pipeline.a.done")
	other.Lane, other.Result = "m", []byte(`{"job_id":"copy-1","lane":"m"}`)
	if r := e.do(other); r.Outcome != Stored || copies("pipeline.a.done") != 2 {
		t.Fatalf("same id, other lane: %+v, %d copies", r, copies("pipeline.a.done"))
	}
	rejected := req("fix-1", "", "pipeline.b.done")
	rejected.Result = []byte(`{"job_id":"fix-1","status":"rejected"}`)
	if err := s.Reject(ctx, rejected); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req("fix-1", "d", "pipeline.b.done")); r.Outcome != Stored || copies("pipeline.b.done") != 2 {
		t.Fatalf("corrected after its rejection: %+v, %d copies", r, copies("pipeline.b.done"))
	}
	// Stream-backed reply subject whose stream refuses: a failure to retry,
	// not an answer.
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req("copy-2", "d", "pipeline.a.done")); r.Outcome != Failed || r.Stage != StageCopy {
		t.Fatalf("%+v", r)
	}
}

func TestLegacyClaimsAreReadUntilTheyExpire(t *testing.T) {
	e := newEnv(t, "", topology.Config{})
	ctx := context.Background()
	kv, err := e.js.CreateKeyValue(ctx, topology.Config{ResultsMaxAge: 3 * time.Second}.LegacyClaimsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, LegacyClaimKey("old-1"), []byte("legacy-d")); err != nil {
		t.Fatal(err)
	}
	s := e.start(Config{})
	if until := s.LegacyUntil(); time.Until(until) <= 0 || time.Until(until) > 4*time.Second {
		t.Fatalf("legacy until %v", until)
	}
	replies, _ := e.nc.SubscribeSync("_INBOX.old")
	_ = e.nc.Flush()
	r := req("old-1", "d", "_INBOX.old")
	r.LegacyDigest = "legacy-d"
	if res := e.do(r); res.Outcome != Repeated || !res.Legacy {
		t.Fatalf("answered by the earlier version: %+v", res)
	}
	if m, err := replies.NextMsg(5 * time.Second); err != nil || m.Header.Get(HeaderRepeat) != "true" {
		t.Fatalf("repeat %v %v", m, err)
	}
	r.LegacyDigest = "other"
	if res := e.do(r); res.Outcome != Conflict || !res.Legacy {
		t.Fatalf("other content: %+v", res)
	}
	if n := len(e.stored("l", "old-1")); n != 0 {
		t.Fatalf("%d stored for a job the earlier version answered", n)
	}
	// Once the newest claim has expired the lookups stop.
	eventually.True(t, 10*time.Second, func() bool { s.watchLegacy(ctx); return !s.LegacyActive() }, "claims expired")
	if res := e.do(req("new-1", "d", "")); res.Outcome != Stored {
		t.Fatalf("%+v", res)
	}
}

func TestRefusalCodes(t *testing.T) {
	for code, want := range map[jetstream.ErrorCode]bool{10071: true, 10164: true, 10077: false} {
		err := fmt.Errorf("wrapped: %w", &jetstream.APIError{ErrorCode: code})
		if wrongLastSequence(err) != want {
			t.Errorf("code %d", code)
		}
	}
	if !TooLarge(&jetstream.APIError{ErrorCode: 10054}) || TooLarge(errors.New("x")) {
		t.Error("too large")
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"a.b", "a.b", true}, {"a.b", "a.c", false}, {"a.*", "a.b", true}, {"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true}, {"a.>", "a", false}, {">", "x", true}, {"a.b.c", "a.b", false}, {"*.b", "a.b", true},
	} {
		if got := matches(splitTokens(tc.filter), tc.subject); got != tc.want {
			t.Errorf("matches(%q, %q) = %v", tc.filter, tc.subject, got)
		}
	}
}

// TestReplicatedStream runs the store against a three-server cluster with
// replicated results: a second store is refused there too (as 10164 or
// 10071), and the guarantees hold.
func TestReplicatedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster")
	}
	urls := cluster(t, 3)
	e := newEnv(t, strings.Join(urls, ","), topology.Config{Replicas: 3})
	e.start(Config{Timeout: 5 * time.Second})
	replies, _ := e.nc.SubscribeSync("_INBOX.r3.>")
	_ = e.nc.Flush()
	if r := e.do(req("r3-1", "d", "_INBOX.r3.a")); r.Outcome != Stored {
		t.Fatalf("%+v", r)
	}
	if r := e.do(req("r3-1", "d", "_INBOX.r3.b")); r.Outcome != Repeated {
		t.Fatalf("%+v", r)
	}
	if r := e.do(req("r3-1", "other", "")); r.Outcome != Conflict {
		t.Fatalf("%+v", r)
	}
	for range 2 {
		if _, err := replies.NextMsg(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.stored("l", "r3-1")); n != 1 {
		t.Fatalf("%d stored", n)
	}
}

// cluster starts n JetStream servers routed to each other and returns their
// client URLs once JetStream has a leader.
func cluster(t *testing.T, n int) []string {
	t.Helper()
	var err error
	for range 3 {
		var urls []string
		if urls, err = startCluster(t, n); err == nil {
			return urls
		}
		t.Logf("cluster start: %v; again", err)
	}
	t.Fatal(err)
	return nil
}

// startCluster starts n servers forming a JetStream cluster. JetStream in a
// cluster needs its routes configured from the start, so the cluster ports
// are chosen here, free a moment ago: one taken since then by another
// listener fails that server's start, and the caller tries again with
// other ports.
func startCluster(t *testing.T, n int) (urls []string, err error) {
	ports := make([]int, n)
	var routes []*url.URL
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		routes = append(routes, &url.URL{Scheme: "nats", Host: l.Addr().String()})
	}
	var servers []*server.Server
	defer func() {
		if err != nil {
			for _, s := range servers {
				s.Shutdown()
			}
		}
	}()
	for i := range n {
		o := &server.Options{ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "hs", Host: "127.0.0.1", Port: ports[i]}, Routes: routes, NoLog: true, NoSigs: true}
		s, err := server.NewServer(o)
		if err != nil {
			return nil, err
		}
		go s.Start()
		servers = append(servers, s)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			return nil, fmt.Errorf("server %s not ready within 30 s", s.Name())
		}
		urls = append(urls, s.ClientURL())
	}
	// A leader alone is not enough: an R3 stream is placed only on peers
	// the leader has current statistics of ("no suitable peers for
	// placement" until then), which is what JetStreamClusterPeers lists.
	if err := eventually.Wait(30*time.Second, func() error {
		if slices.ContainsFunc(servers, func(s *server.Server) bool { return s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n }) {
			return nil
		}
		return errors.New("no JetStream meta leader that knows every peer")
	}); err != nil {
		return nil, err
	}
	for _, s := range servers {
		t.Cleanup(s.Shutdown)
	}
	return urls, nil
}
