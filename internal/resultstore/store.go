// Package resultstore stores each job's result exactly once and answers
// every requester (docs/contract.md#guarantees).
//
// The stored result is itself the record that a job was answered. It is
// published on the job's own subject, scoring.results.<lane>.<token>
// (job.ResultSubject), with Nats-Expected-Last-Subject-Sequence 0, so the
// server refuses a second result for that subject at any delay: after a
// redelivery hours later, a resubmission, a worker that stalled past its
// AckWait, or a crash between the store and the ack. A refused store looks
// the stored result up: the same content (the digest) is a repeat, and its
// stored answer is sent again to the job's reply subject, marked
// Hybridscore-Repeat: true; other content is a conflict. That is one
// durable write per answered job and no lookup before it.
//
// Requests go out as plain publishes with a reply token of the store's own
// inbox, and their answers come back as notifications: a caller drives
// thousands of stores at once from a small pool of goroutines without a
// goroutine, future or channel per job (BenchmarkPublishPaths compares
// this with nats.go's asynchronous publisher).
package resultstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Headers of stored results and their copies.
const (
	// HeaderDigest carries the digest of the job's content.
	HeaderDigest = "Hybridscore-Digest"
	// HeaderRepeat is "true" on an answer sent again for a job answered
	// before.
	HeaderRepeat = "Hybridscore-Repeat"
	// HeaderStatus is "rejected" on a rejected job's answer, which does not
	// count as the job's record: a corrected job with the same id is
	// scored and stored after it.
	HeaderStatus = "Hybridscore-Status"
)

// Outcome is how a store ended.
type Outcome uint8

// Outcomes.
const (
	// Stored: the result is stored (and copied to the reply subject).
	Stored Outcome = iota + 1
	// Repeated: the job was answered before with the same content; the
	// stored answer was sent again to the reply subject, nothing stored.
	Repeated
	// Conflict: the job id was answered before for other content.
	Conflict
	// Failed: the infrastructure failed (Err); Retry later.
	Failed
	// Unstorable: the stream will never take this result (Err), e.g. it is
	// larger than the stream's maximum message size.
	Unstorable
)

var outcomeNames = [...]string{"", "stored", "repeated", "conflict", "failed", "unstorable"}

// String names the outcome.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Result is the end of a store.
type Result struct {
	Outcome Outcome
	// Err of Failed and Unstorable.
	Err error
	// Stage names the step that failed (StageResult, StageLookup,
	// StageCopy, StageClaim), for logs and to tell a refused copy apart.
	Stage string
	// Legacy reports a repeat or conflict found in the claims of an
	// earlier version.
	Legacy bool
	// Repeat reports, on a failed copy, that the answer copied was the
	// stored one of a job answered before.
	Repeat bool
}

// Request is one job's result to store.
type Request struct {
	Lane, JobID string
	// Digest identifies the job's content (Digest of package consumer's
	// handler): the same JobID with another Digest is a conflict.
	Digest string
	// LegacyDigest is the digest an earlier version wrote into its claims
	// bucket for this job; checked only while that bucket can still hold
	// a claim (LegacyActive), and only when set.
	LegacyDigest string
	// Reply is the job's reply subject; empty: none (the stored result is
	// the answer).
	Reply string
	// Result is the encoded result; the store does not keep it after the
	// Op ends.
	Result []byte
	// Header holds headers the result carries besides the store's (a trace
	// context); nil: none.
	Header nats.Header
}

type stage uint8

const (
	stageNone   stage = iota
	stageLegacy       // look the job up in an earlier version's claims
	stageRecord       // store the result on the job's subject, expecting none
	stageLookup       // read the result stored before
	stageCopy         // send the result to the reply subject
)

// Names of the steps of a store, as Result.Stage gives them.
const (
	StageClaim  = "claim lookup"
	StageResult = "result"
	StageLookup = "lookup"
	StageCopy   = "reply copy"
)

var stageNames = [...]string{"", StageClaim, StageResult, StageLookup, StageCopy}

// Op is one store in progress. The zero value is ready for Start; a caller
// embeds it in its own record of the job and finds that again through Tag.
type Op struct {
	Request
	// Tag is the caller's; the store never reads it.
	Tag any

	notify  func(*Op)
	token   uint64 // of the request in flight, in Store.pending
	stage   stage
	out     nats.Msg
	sentAt  time.Time
	err     error
	pa      pubAck
	found   bool   // the lookup found a message
	stored  []byte // the stored answer of a repeat
	other   string // the stored message's digest
	expect  string // expected last subject sequence of the record
	repeat  bool
	legacy  bool
	lookups int
}

// Config configures a Store. Zero values take the defaults noted.
type Config struct {
	// Stream stores the results; default topology.ResultsStream.
	Stream string
	// Timeout bounds the wait for one answer; default config's
	// PublishTimeout.
	Timeout time.Duration
	// LegacyClaims is the claims bucket of versions that kept a claim per
	// job beside its result; default topology.LegacyClaimsBucket.
	LegacyClaims string
	Logger       *zap.Logger
}

// Store stores results. Safe for concurrent use.
type Store struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *zap.Logger
	inbox   string
	tokens  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]*Op
	streams streamTable
	// legacyUntil is when the earlier version's newest claim expires (unix
	// ns); 0: no such bucket.
	legacyUntil atomic.Int64
	legacyGet   string
}

// New returns a Store publishing through nc (and js for the rare
// synchronous calls). Run must be running for answers to arrive.
func New(nc *nats.Conn, js jetstream.JetStream, cfg Config) *Store {
	if cfg.Stream == "" {
		cfg.Stream = topology.ResultsStream
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = config.Defaults().PublishTimeout
	}
	if cfg.LegacyClaims == "" {
		cfg.LegacyClaims = topology.LegacyClaimsBucket
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Store{cfg: cfg, nc: nc, js: js, log: cfg.Logger, pending: map[uint64]*Op{},
		inbox:     nc.NewRespInbox() + ".",
		legacyGet: "$JS.API.DIRECT.GET.KV_" + cfg.LegacyClaims + ".$KV." + cfg.LegacyClaims + "."}
}

// Inbox is the prefix of the subjects the store's answers come back on: a
// job may not name it as its reply subject.
func (s *Store) Inbox() string { return s.inbox }

// Run receives answers, times out requests left unanswered, and keeps the
// table of streams (which reply subjects a stream stores) and the state of
// an earlier version's claims up to date, until ctx ends. ready is closed
// once answers can arrive.
func (s *Store) Run(ctx context.Context, ready chan<- struct{}) error {
	sub, err := s.nc.Subscribe(s.inbox+"*", s.onReply)
	if err != nil {
		return fmt.Errorf("resultstore: subscribe to answers: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)
	// A stream created or changed is read at once, so a reply subject it
	// stores gets a PubAck from then on (where the NATS user may not
	// subscribe to advisories, the 30 s refresh still finds it).
	changed := make(chan struct{}, 1)
	if adv, err := s.nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.>", func(*nats.Msg) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}); err == nil {
		defer func() { _ = adv.Unsubscribe() }()
	}
	_ = s.nc.Flush()
	s.refresh(ctx)
	if ready != nil {
		close(ready)
	}
	tick := time.NewTicker(max(min(s.cfg.Timeout/4, 250*time.Millisecond), 10*time.Millisecond))
	defer tick.Stop()
	refresh := time.NewTicker(30 * time.Second)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.expire()
		case <-refresh.C:
			s.refresh(ctx)
		case <-changed:
			s.refresh(ctx)
		}
	}
}

func (s *Store) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.streams.load(rctx, s.js); err != nil {
		s.log.Warn("reading the streams' subjects", zap.Error(err))
	}
	s.watchLegacy(rctx)
}

// Start begins storing op.Request. notify is called (on a NATS goroutine:
// it must not block) whenever op has news; the caller then calls Advance
// from a goroutine of its own.
func (s *Store) Start(op *Op, notify func(*Op)) {
	op.notify = notify
	op.stage, op.repeat, op.legacy, op.lookups, op.expect, op.stored = stageNone, false, false, 0, "0", nil
	if op.LegacyDigest != "" && s.LegacyActive() {
		s.lookupLegacy(op)
		return
	}
	s.record(op)
}

// Retry sends again the request of the step that failed.
func (s *Store) Retry(op *Op) {
	switch op.stage {
	case stageLegacy:
		s.lookupLegacy(op)
	case stageLookup:
		s.lookup(op)
	case stageCopy:
		if r, done := s.copy(op); done {
			op.err = r.Err
			op.notify(op)
		}
	default:
		s.record(op)
	}
}

// Advance takes in the news notified for op. It returns the Result and
// true when the store has ended, else false: the next request is out and
// notify will be called again.
func (s *Store) Advance(op *Op) (Result, bool) {
	err := op.err
	op.err = nil
	switch op.stage {
	case stageLegacy:
		switch {
		case err != nil:
			return s.fail(op, err)
		case !op.found:
			s.record(op)
			return Result{}, false
		case op.other != op.LegacyDigest:
			return Result{Outcome: Conflict, Legacy: true}, true
		}
		// Answered by an earlier version, whose result is not at hand:
		// the requester gets this one, marked as a repeat.
		op.repeat, op.legacy = true, true
		return s.copy(op)
	case stageRecord:
		switch {
		case err != nil && wrongLastSequence(err):
			s.lookup(op)
			return Result{}, false
		case err != nil:
			return s.fail(op, err)
		}
		return s.copy(op)
	case stageLookup:
		switch {
		case err != nil:
			return s.fail(op, err)
		case op.found && op.other == op.Digest:
			op.repeat = true
			return s.copy(op)
		case op.found && op.other != "":
			return Result{Outcome: Conflict}, true
		case op.lookups > 5:
			return s.fail(op, errors.New("the job's subject changed under every attempt to store its result"))
		}
		// Removed since the refusal, or a rejection stands there: store
		// the result after it.
		s.record(op)
		return Result{}, false
	case stageCopy:
		if err != nil {
			return s.fail(op, err)
		}
		return s.done(op), true
	}
	return Result{Outcome: Failed, Err: errors.New("resultstore: Advance without Start")}, true
}

func (s *Store) done(op *Op) Result {
	op.stored = nil
	if op.repeat {
		return Result{Outcome: Repeated, Legacy: op.legacy}
	}
	return Result{Outcome: Stored}
}

func (s *Store) fail(op *Op, err error) (Result, bool) {
	o := Failed
	if TooLarge(err) {
		o = Unstorable
	}
	return Result{Outcome: o, Err: err, Stage: stageNames[op.stage], Repeat: op.repeat, Legacy: op.legacy}, true
}

// record publishes the result on the job's subject, expecting the subject
// to hold nothing (or the rejection found there).
func (s *Store) record(op *Op) {
	op.stage = stageRecord
	rh := recordHeaders.Get().(*recordHeader)
	h := rh.h
	clear(h)
	for k, v := range op.Header {
		h[k] = v
	}
	if op.expect == "0" {
		h[jetstream.ExpectedLastSubjSeqHeader] = expectNone
	} else {
		rh.expect[0] = op.expect
		h[jetstream.ExpectedLastSubjSeqHeader] = rh.expect[:]
	}
	rh.digest[0] = op.Digest
	h[HeaderDigest] = rh.digest[:]
	op.out = nats.Msg{Subject: job.ResultSubject(op.Lane, op.JobID), Data: op.Result, Header: h}
	s.request(op)
	// PublishMsg encoded the headers before it returned, and op.out.Header
	// is never read again (op may already be another goroutine's).
	recordHeaders.Put(rh)
}

// recordHeader is the headers of one record, recycled: a map and two
// slices less to allocate per job.
type recordHeader struct {
	h              nats.Header
	digest, expect [1]string
}

var recordHeaders = sync.Pool{New: func() any { return &recordHeader{h: make(nats.Header, 4)} }}

// expectNone is the header value of a first store, shared: headers are
// only read once written.
var expectNone = []string{"0"}

// lookup reads what the job's subject holds. It is the path of repeats and
// conflicts only, so it uses nats.go's own call on a goroutine of its own.
func (s *Store) lookup(op *Op) {
	op.stage = stageLookup
	op.lookups++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		op.found, op.other, op.stored, op.expect = false, "", nil, "0"
		// The record, wherever it stands among rejections (an earlier
		// version stored them after it), else the last rejection to store
		// after.
		rec, last, err := s.standing(ctx, job.ResultSubject(op.Lane, op.JobID))
		switch {
		case err != nil:
		case rec != nil:
			op.found, op.stored, op.other = true, rec.Data, rec.Header.Get(HeaderDigest)
		case last != 0:
			op.expect = strconv.FormatUint(last, 10)
		}
		op.err = err
		op.notify(op)
	}()
}

// standing reads what subject holds, first to last: the record among its
// messages (the first that is not a rejection), if any, and the sequence
// of its last message (0: none). Only the rare paths read it: a rejection
// refused, a lookup that found a rejection last. It reads every rejection
// before the record, however many a producer's bad copies stored (each
// read is one request; the subject's messages are finite, kept for
// RESULTS_MAX_AGE).
func (s *Store) standing(ctx context.Context, subject string) (record *jetstream.RawStreamMsg, last uint64, err error) {
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if err != nil {
		return nil, 0, err
	}
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, last, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if m.Header.Get(HeaderStatus) != "rejected" {
			return m, m.Sequence, nil
		}
		last, seq = m.Sequence, m.Sequence+1
	}
}

// copy sends the answer to the job's reply subject: a JetStream publish
// awaiting its PubAck where a stream stores that subject, else a plain
// publish. It returns true when nothing is left to wait for.
func (s *Store) copy(op *Op) (Result, bool) {
	op.stage = stageCopy
	if op.Reply == "" || op.Reply == job.ResultSubject(op.Lane, op.JobID) {
		return s.done(op), true
	}
	data, corr := op.Result, ""
	if op.repeat && op.stored != nil {
		data, corr = asRequested(op.stored, op.Result)
	}
	h := make(nats.Header, len(op.Header)+2)
	for k, v := range op.Header {
		h[k] = v
	}
	h[HeaderDigest] = []string{op.Digest}
	if op.repeat {
		h[HeaderRepeat] = []string{"true"}
	}
	op.out = nats.Msg{Subject: op.Reply, Data: data, Header: h}
	if !s.streams.covers(op.Reply) {
		if err := s.nc.PublishMsg(&op.out); err != nil {
			return s.fail(op, err)
		}
		return s.done(op), true
	}
	id := CopyMsgID(op.Lane, op.JobID, op.Digest)
	if corr != "" {
		// Another requester's answer: not dropped there as the first
		// one's duplicate.
		id += "/" + corr
	}
	h[jetstream.MsgIDHeader] = []string{id}
	s.request(op)
	return Result{}, false
}

// asRequested is the stored answer as this requester gets it: its own
// correlation_id (or none, when it sent none) in place of the one of the
// job that was stored, so that a pipeline matching answers by
// correlation_id matches a repeat. Only that member changes, in place,
// where the worker's encoder puts it (after job_id); every other byte is
// the stored answer's, and it is sent unchanged when the two ids are the
// same. corr is then "", else a short hash of the requester's id, which
// tells this answer apart from the first requester's in a stream's
// duplicate window.
func asRequested(stored, mine []byte) (data []byte, corr string) {
	var a, b struct {
		CorrelationID string `json:"correlation_id"`
	}
	if json.Unmarshal(stored, &a) != nil || json.Unmarshal(mine, &b) != nil || a.CorrelationID == b.CorrelationID {
		return stored, ""
	}
	// The requester's member as its own answer encodes it.
	var v []byte
	if from, to, ok := member(mine, "correlation_id"); ok {
		v = mine[from:to]
	} else if b.CorrelationID != "" {
		return stored, ""
	}
	from, to, ok := member(stored, "correlation_id")
	if !ok {
		if _, to, ok = member(stored, "job_id"); !ok {
			return stored, ""
		}
		from = to
	}
	out := make([]byte, 0, len(stored)+len(v))
	out = append(append(append(out, stored[:from]...), v...), stored[to:]...)
	return out, strconv.FormatUint(xxhash.Sum64String(b.CorrelationID), 36)
}

// member returns where the top-level member name of the JSON object data
// lies, its leading comma included; ok is false when it is absent or the
// object's first member (which has no comma to take along).
func member(data []byte, name string) (from, to int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	first := true
	for prev := int(dec.InputOffset()); dec.More(); first = false {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, false
		}
		end := int(dec.InputOffset())
		if t == name {
			return prev, end, !first
		}
		prev = end
	}
	return 0, 0, false
}

// request sends op.out with a reply token of its own; the answer (or the
// timeout) is notified.
func (s *Store) request(op *Op) {
	token := s.tokens.Add(1)
	op.token = token
	var b [96]byte
	op.out.Reply = string(strconv.AppendUint(append(b[:0], s.inbox...), token, 36))
	op.sentAt = time.Now()
	s.mu.Lock()
	s.pending[token] = op
	s.mu.Unlock()
	if err := s.nc.PublishMsg(&op.out); err != nil {
		s.mu.Lock()
		_, mine := s.pending[token]
		delete(s.pending, token)
		s.mu.Unlock()
		if mine {
			op.err = err
			op.notify(op)
		}
	}
}

// onReply reads an answer (on the connection's goroutine: it only reads
// it and notifies).
func (s *Store) onReply(m *nats.Msg) {
	token, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, s.inbox), 36, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	op := s.pending[token]
	delete(s.pending, token)
	s.mu.Unlock()
	if op == nil {
		return
	}
	op.err = nil
	status := m.Header.Get("Status")
	switch {
	case op.stage == stageLegacy:
		op.found, op.other = false, ""
		switch status {
		case "":
			// A deleted or purged claim is no claim.
			op.found = m.Header.Get("KV-Operation") == ""
			op.other = string(m.Data)
		case "404":
		default:
			op.err = fmt.Errorf("claims bucket answered %s %s", status, m.Header.Get("Description"))
		}
	case status == "503":
		op.err = fmt.Errorf("%w: no stream answered for %s", nats.ErrNoResponders, op.out.Subject)
	case status != "":
		op.err = fmt.Errorf("publish to %s: status %s %s", op.out.Subject, status, m.Header.Get("Description"))
	default:
		op.pa, op.err = parsePubAck(m.Data)
	}
	op.notify(op)
}

// expire fails the requests left unanswered for longer than Timeout.
func (s *Store) expire() {
	now := time.Now()
	var expired []*Op
	s.mu.Lock()
	for token, op := range s.pending {
		if now.Sub(op.sentAt) > s.cfg.Timeout {
			delete(s.pending, token)
			expired = append(expired, op)
		}
	}
	s.mu.Unlock()
	for _, op := range expired {
		op.err = fmt.Errorf("%w: no answer within %s", nats.ErrTimeout, s.cfg.Timeout)
		op.notify(op)
	}
}

// Forget drops op's request in flight, if any: its answer will be ignored.
func (s *Store) Forget(op *Op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[op.token] == op {
		delete(s.pending, op.token)
	}
}

// Do stores r and waits for the end (for callers with a goroutine of their
// own, and tests).
func (s *Store) Do(ctx context.Context, r Request) Result {
	op := &Op{Request: r}
	ch := make(chan struct{}, 1)
	notify := func(*Op) { ch <- struct{}{} }
	s.Start(op, notify)
	for {
		select {
		case <-ctx.Done():
			s.Forget(op)
			return Result{Outcome: Failed, Err: ctx.Err(), Stage: stageNames[op.stage]}
		case <-ch:
		}
		if res, done := s.Advance(op); done {
			return res
		}
	}
}

// Reject stores a rejected job's answer on the job's subject, where it does
// not count as the job's record (HeaderStatus), and sends it to the reply
// subject. It waits for the PubAcks.
//
// A rejection is stored only where no record stands: on a subject that
// holds nothing or rejections, each expecting the last one seen. Behind a
// record it would stand as the subject's last message, where the job's
// next copy looks its record up, and that copy would be stored as a second
// result; there the rejection only goes to the reply subject.
func (s *Store) Reject(ctx context.Context, r Request) error {
	h := make(nats.Header, len(r.Header)+2)
	for k, v := range r.Header {
		h[k] = v
	}
	h[HeaderStatus] = []string{"rejected"}
	subject := job.ResultSubject(r.Lane, r.JobID)
	for expect, tries := "0", 0; ; tries++ {
		h[jetstream.ExpectedLastSubjSeqHeader] = []string{expect}
		_, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: r.Result, Header: h})
		if err == nil {
			break
		}
		if !wrongLastSequence(err) || tries == 5 {
			return err
		}
		rec, last, err := s.standing(ctx, subject)
		if err != nil {
			return err
		}
		if rec != nil {
			break // a record stands: the rejection is not stored
		}
		expect = strconv.FormatUint(last, 10)
	}
	delete(h, jetstream.ExpectedLastSubjSeqHeader)
	if r.Reply == "" || r.Reply == subject {
		return nil
	}
	m := &nats.Msg{Subject: r.Reply, Data: r.Result, Header: h}
	if !s.streams.covers(r.Reply) {
		return s.nc.PublishMsg(m)
	}
	m.Header = make(nats.Header, len(h)+1)
	for k, v := range h {
		m.Header[k] = v
	}
	m.Header[jetstream.MsgIDHeader] = []string{CopyMsgID(r.Lane, r.JobID, "")}
	_, err := s.js.PublishMsg(ctx, m)
	return err
}

// CopyMsgID is the Nats-Msg-Id of a copy of the answer to job jobID of
// lane, whose content has digest (empty for a rejection), to a reply
// subject a stream stores: <lane>/<job_id>/<digest>, or
// <lane>/<job_id>/rejected. Keyed on the job's content, not on the
// answer's bytes (a rejection built again on a redelivery has another
// scored_at and attempt): the same answer sent again (a retried publish, a
// repeat, a redelivered rejection) is stored once inside that stream's
// duplicate window, while another answer (the scored copy of a job
// rejected before, the same job_id on another lane) is stored too; with
// the job_id alone that stream would drop it.
func CopyMsgID(lane, jobID, digest string) string {
	if digest == "" {
		digest = "rejected"
	}
	return job.MsgID(lane, jobID) + "/" + digest
}

// wrongLastSequence reports the server's refusal of a second result: 10071
// on a single server, 10164 from a replicated stream.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// errMessageTooLarge is the server's answer to a message over the stream's
// maximum message size.
const errMessageTooLarge jetstream.ErrorCode = 10054

// TooLarge reports the server's refusal of a message over the stream's
// maximum message size: no retry mends it.
func TooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errMessageTooLarge
}
