// Package smoke checks a running hybridscore deployment end to end, the way
// an operator does after a deploy, an upgrade, a rollback or a recovery
// (docs/operations.md#smoke-test). It publishes one job per outcome —
// scored, degraded, rejected, expired — waits for each result, validates it
// against schemas/result.schema.json and the fields that prove its outcome,
// and reads a worker's /health and /metrics. The Report has one row per
// check: pass, fail or skip.
//
// Every run has an id of its own, which names its jobs, its correlation id
// and its results subject, so repeated runs are never duplicates of each
// other and never read each other's results. The jobs go to a lane of their
// own ("smoke" by default), away from production lanes.
package smoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/resultstore"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
	"github.com/hybridscore/hybridscore/schemas"
)

// Outcome is one check's verdict.
type Outcome string

// The verdicts. A skipped check does not fail the run: it could not be
// carried out against this deployment, and its detail says why.
const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	Skip Outcome = "skip"
)

// The checks, in the order a Report lists them.
const (
	CheckScored   = "scored"
	CheckDegraded = "degraded"
	CheckRejected = "rejected"
	CheckExpired  = "expired"
	CheckHealth   = "health"
	CheckMetrics  = "metrics"
)

// Defaults of Options.
const (
	DefaultLane         = "smoke"
	DefaultTimeout      = 30 * time.Second
	DefaultMaxTextBytes = 16384 // the workers' default MAX_TEXT_BYTES
)

// Options configure Run. Zero values take the defaults noted.
type Options struct {
	// Connect opens the NATS connection the jobs are published and their
	// results read on; Run closes it. nil, or an error, fails the four job
	// checks and leaves the HTTP checks to run.
	Connect func(ctx context.Context) (*nats.Conn, error)
	// HealthURL is a worker's HTTP address (http://host:8053) or its
	// /health URL; empty skips the health check.
	HealthURL string
	// MetricsURL is a worker's HTTP address or its /metrics URL; empty
	// skips the metrics check.
	MetricsURL string
	// Lane receives the jobs (scoring.jobs.<lane>); default "smoke".
	Lane string
	// Timeout bounds the wait for the four results, from the first
	// publish; default 30 s.
	Timeout time.Duration
	// MaxTextBytes is the workers' MAX_TEXT_BYTES: the degraded job's text
	// is exactly this long, so it is valid while its request URL is far
	// longer than any LANGEXTRACT_MAX_URL_BYTES below three times it.
	// Default 16384.
	MaxTextBytes int
	// DegradedOK accepts a /health status of "degraded" (Redis or
	// langextract down) as well as "healthy".
	DegradedOK bool
	// Version, when set, is the version /health must report (after an
	// upgrade or a rollback).
	Version string
	// HTTP makes the health and metrics requests; default a client with a
	// 5 s timeout.
	HTTP *http.Client
	// RunID names this run's jobs and results subject; default a UTC time
	// stamp and a random suffix.
	RunID string
}

func (o Options) withDefaults() (Options, error) {
	if o.Lane == "" {
		o.Lane = DefaultLane
	}
	if !job.ValidLane(o.Lane) {
		return o, fmt.Errorf("smoke: lane %q is not one token of [A-Za-z0-9_-]", o.Lane)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = DefaultMaxTextBytes
	}
	if o.MaxTextBytes < 256 {
		return o, fmt.Errorf("smoke: max text bytes %d: the degraded job needs at least 256", o.MaxTextBytes)
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	if o.RunID == "" {
		o.RunID = NewRunID()
	}
	if len(jobID(o, CheckDegraded)) > 128 || !job.ValidLane(o.RunID) {
		return o, fmt.Errorf("smoke: run id %q must be a short token of [A-Za-z0-9_-]", o.RunID)
	}
	return o, nil
}

// NewRunID returns a run id unique across runs: the UTC time to the second
// and a random suffix.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run carries out every check and returns the report; it fails only for
// invalid options. A check that cannot reach what it checks fails with the
// reason instead.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Report{RunID: o.RunID, Lane: o.Lane, Subject: resultsSubject(o), Started: time.Now().UTC()}
	r.Checks = append(r.Checks, runJobs(ctx, o)...)
	r.Checks = append(r.Checks, checkHealth(ctx, o), checkMetrics(ctx, o))
	r.OK = r.Count(Fail) == 0
	return r, nil
}

func resultsSubject(o Options) string { return topology.ResultsPrefix + o.Lane + ".smoke." + o.RunID }

// jobCase is one published job and how its result proves its outcome.
type jobCase struct {
	name  string
	wire  job.Wire
	judge func(r *job.Result) (Outcome, string)
}

func jobID(o Options, name string) string { return "smoke-" + o.RunID + "-" + name }

// cases returns the four jobs. Their texts carry the run id, so the scored
// job's analyses are cache misses and exercise the analyzer for real.
func cases(o Options) []jobCase {
	now := time.Now()
	base := func(name, task string, vector float64) job.Wire {
		return job.Wire{JobID: jobID(o, name), TaskDescription: task,
			HistoricalPatternText: "Built user authentication using the OAuth2 protocol and JWT tokens (smoke run " + o.RunID + ", " + name + ")",
			VectorSimilarity:      vector, ReplySubject: resultsSubject(o), CorrelationID: o.RunID, OnFallback: job.FallbackDegrade}
	}
	scored := base(CheckScored, "Implement OAuth2 login with JWT tokens for the billing API (smoke run "+o.RunID+")", 0.8)
	degraded := base(CheckDegraded, longText(o), 0.6)
	rejected := base(CheckRejected, "", 0.5) // an empty task: missing_field
	expired := base(CheckExpired, "Expire before anyone analyses this task (smoke run "+o.RunID+")", 0.4)
	expired.Deadline = now.Add(-time.Hour).UTC().Format(time.RFC3339)
	return []jobCase{
		{CheckScored, scored, judgeScored(scored)},
		{CheckDegraded, degraded, judgeDegraded(o, degraded)},
		{CheckRejected, rejected, judgeRejected(o)},
		{CheckExpired, expired, judgeExpired(expired)},
	}
}

// longText is a valid task text of exactly MaxTextBytes whose langextract
// request URL is about three times as long: "é" is two bytes that
// URL-encode to six characters. A langextract client refuses a URL longer
// than LANGEXTRACT_MAX_URL_BYTES before sending anything, which degrades
// this job with validation_error and, not counting toward the breaker,
// leaves every other job alone.
func longText(o Options) string {
	prefix := "Smoke run " + o.RunID + ": a task text whose request URL is longer than langextract accepts "
	n := (o.MaxTextBytes - len(prefix)) / 2
	s := prefix + strings.Repeat("é", n)
	if len(s) < o.MaxTextBytes {
		s += "."
	}
	return s
}

// urlBytes estimates the length of the langextract request URL for text
// (the query string alone).
func urlBytes(text string) int {
	n := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~', c == ' ':
			n++
		default:
			n += 3
		}
	}
	return n
}

type answer struct {
	data          []byte
	msgID, wantID string // the copy's Nats-Msg-Id, and what it should be
	at            time.Time
}

// runJobs publishes the four jobs and judges their results.
func runJobs(ctx context.Context, o Options) []Check {
	cs := cases(o)
	checks := make([]Check, len(cs))
	for i, c := range cs {
		checks[i] = Check{Name: c.name, JobID: c.wire.JobID}
	}
	failAll := func(format string, args ...any) []Check {
		for i := range checks {
			checks[i].Result, checks[i].Detail = Fail, fmt.Sprintf(format, args...)
		}
		return checks
	}
	if o.Connect == nil {
		return failAll("no NATS connection configured")
	}
	nc, err := o.Connect(ctx)
	if err != nil {
		return failAll("NATS: %v", err)
	}
	defer nc.Close()
	pc, err := producer.NewClient(nc)
	if err != nil {
		return failAll("JetStream: %v", err)
	}
	col := &collector{lane: o.Lane, answers: map[string][]answer{}, arrived: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(resultsSubject(o), col.receive)
	if err != nil {
		return failAll("subscribe to %s: %v", resultsSubject(o), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		return failAll("NATS: %v", err)
	}

	sent := make([]time.Time, len(cs))
	var ids []string
	for i, c := range cs {
		sent[i] = time.Now()
		if _, err := pc.Publish(ctx, o.Lane, c.wire); err != nil {
			checks[i].Result, checks[i].Detail = Fail, fmt.Sprintf("publish to %s%s: %v", topology.JobsPrefix, o.Lane, err)
			continue
		}
		ids = append(ids, c.wire.JobID)
	}
	col.wait(ctx, ids)

	col.mu.Lock()
	defer col.mu.Unlock()
	for i, c := range cs {
		if checks[i].Result != "" {
			continue // publishing failed
		}
		got := col.answers[c.wire.JobID]
		if len(got) == 0 {
			checks[i].Result = Fail
			checks[i].Detail = fmt.Sprintf("no result within %s on %s: is a worker consuming %s%s?", o.Timeout, resultsSubject(o), topology.JobsPrefix, o.Lane)
			continue
		}
		a := got[0]
		checks[i].Elapsed = a.at.Sub(sent[i])
		checks[i].Answer = json.RawMessage(a.data)
		checks[i].Result, checks[i].Detail = judge(c, a, len(got))
	}
	return checks
}

// collector keeps the results that arrive on the run's subject, by job id.
type collector struct {
	lane    string
	mu      sync.Mutex
	answers map[string][]answer
	arrived chan struct{} // a result arrived since the last look
}

func (c *collector) receive(m *nats.Msg) {
	var id struct {
		JobID string `json:"job_id"`
	}
	_ = json.Unmarshal(m.Data, &id)
	c.mu.Lock()
	c.answers[id.JobID] = append(c.answers[id.JobID], answer{data: m.Data, msgID: m.Header.Get(jetstream.MsgIDHeader),
		wantID: resultstore.CopyMsgID(c.lane, id.JobID, m.Header.Get(resultstore.HeaderDigest)), at: time.Now()})
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
}

// wait returns once every job of ids has a result, or ctx ends.
func (c *collector) wait(ctx context.Context, ids []string) {
	for {
		c.mu.Lock()
		n := 0
		for _, id := range ids {
			if len(c.answers[id]) > 0 {
				n++
			}
		}
		c.mu.Unlock()
		if n == len(ids) {
			return
		}
		select {
		case <-c.arrived:
		case <-ctx.Done():
			return
		}
	}
}

// judge checks what every result must show, then the case's own fields.
func judge(c jobCase, a answer, copies int) (Outcome, string) {
	if copies > 1 {
		return Fail, fmt.Sprintf("%d results for one job", copies)
	}
	if err := schemas.Validate("result", a.data); err != nil {
		return Fail, fmt.Sprintf("result does not match schemas/result.schema.json: %s", oneLine(err))
	}
	var r job.Result
	if err := json.Unmarshal(a.data, &r); err != nil {
		return Fail, fmt.Sprintf("result is not JSON: %v", err)
	}
	switch {
	case a.msgID != a.wantID && a.msgID != c.wire.JobID: // the job id alone: an earlier version's worker (a rollback)
		return Fail, fmt.Sprintf("result's Nats-Msg-Id is %q, want %q (<lane>/<job_id>/<digest, or rejected>)", a.msgID, a.wantID)
	case r.CorrelationID != c.wire.CorrelationID:
		return Fail, fmt.Sprintf("correlation_id %q, want %q echoed", r.CorrelationID, c.wire.CorrelationID)
	}
	return c.judge(&r)
}

func judgeScored(w job.Wire) func(*job.Result) (Outcome, string) {
	return func(r *job.Result) (Outcome, string) {
		switch {
		case r.Status != job.StatusScored:
			return Fail, fmt.Sprintf("status %s%s, want scored", r.Status, why(r))
		case r.FallbackReason != nil || r.Error != nil || !r.UsedPatterns || r.PatternScore == nil || r.Cache == nil:
			return Fail, "scored, but without pattern score and cache report, or with a fallback reason or error"
		case !same(r.VectorScore, w.VectorSimilarity):
			return Fail, fmt.Sprintf("vector_score %s, want the job's %.2f", num(r.VectorScore), w.VectorSimilarity)
		}
		return Pass, fmt.Sprintf("hybrid %s (vector %s, pattern %s), cache %s/%s, worker %s",
			num(r.HybridScore), num(r.VectorScore), num(r.PatternScore), r.Cache.Task, r.Cache.Pattern, r.WorkerID)
	}
}

func judgeDegraded(o Options, w job.Wire) func(*job.Result) (Outcome, string) {
	return func(r *job.Result) (Outcome, string) {
		switch {
		case r.Status == job.StatusScored:
			return Skip, fmt.Sprintf("cannot be provoked here: worker %s scored a text whose langextract request would be about %d KB, "+
				"so it analyses in-process (no LANGEXTRACT_URL) or allows URLs that long (LANGEXTRACT_MAX_URL_BYTES)",
				r.WorkerID, (urlBytes(w.TaskDescription)+1023)/1024)
		case r.Status == job.StatusRejected && r.Error != nil && r.Error.Code == job.CodeTooLarge:
			return Fail, fmt.Sprintf("rejected too_large: the workers' MAX_TEXT_BYTES is below %d; pass --max-text-bytes with theirs", len(w.TaskDescription))
		case r.Status != job.StatusDegraded:
			return Fail, fmt.Sprintf("status %s%s, want degraded", r.Status, why(r))
		case r.FallbackReason == nil || *r.FallbackReason != langextract.ReasonValidation:
			return Fail, fmt.Sprintf("degraded with fallback_reason %s, want validation_error: the URL limit refuses this text before any request, "+
				"so another reason means langextract itself is failing", str(r.FallbackReason))
		case !same(r.HybridScore, w.VectorSimilarity) || !same(r.VectorScore, w.VectorSimilarity):
			return Fail, fmt.Sprintf("hybrid %s, vector %s: a degraded result is the job's vector similarity %.2f", num(r.HybridScore), num(r.VectorScore), w.VectorSimilarity)
		case r.Cache == nil || r.Cache.Task != "miss":
			return Fail, "degraded, but the failed task analysis is not reported as a cache miss"
		}
		return Pass, fmt.Sprintf("validation_error, hybrid = vector %s, worker %s", num(r.HybridScore), r.WorkerID)
	}
}

// judgeRejected expects missing_field. The worker also dead-letters the
// job, on the smoke lane: the dead-letter alert may fire for that lane.
func judgeRejected(o Options) func(*job.Result) (Outcome, string) {
	return func(r *job.Result) (Outcome, string) {
		switch {
		case r.Status != job.StatusRejected:
			return Fail, fmt.Sprintf("status %s%s, want rejected", r.Status, why(r))
		case r.Error == nil || r.Error.Code != job.CodeMissingField:
			return Fail, fmt.Sprintf("rejected with%s, want missing_field", why(r))
		}
		return Pass, fmt.Sprintf("missing_field, worker %s; dead-lettered on %s", r.WorkerID, topology.DLQPrefix+o.Lane)
	}
}

func judgeExpired(w job.Wire) func(*job.Result) (Outcome, string) {
	return func(r *job.Result) (Outcome, string) {
		switch {
		case r.Status != job.StatusExpired:
			return Fail, fmt.Sprintf("status %s%s, want expired", r.Status, why(r))
		case r.Error == nil || r.Error.Code != job.CodeDeadlineExceeded:
			return Fail, fmt.Sprintf("expired with%s, want deadline_exceeded", why(r))
		case !same(r.VectorScore, w.VectorSimilarity):
			return Fail, fmt.Sprintf("vector_score %s, want the job's %.2f", num(r.VectorScore), w.VectorSimilarity)
		}
		return Pass, fmt.Sprintf("deadline_exceeded, worker %s", r.WorkerID)
	}
}

// why names a result's error or fallback reason, for failure details.
func why(r *job.Result) string {
	switch {
	case r.Error != nil:
		return " (" + r.Error.Code + ": " + r.Error.Message + ")"
	case r.FallbackReason != nil:
		return " (" + *r.FallbackReason + ")"
	}
	return ""
}

func same(p *float64, v float64) bool { return p != nil && *p > v-1e-9 && *p < v+1e-9 }

func num(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%.3f", *p)
}

func str(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
