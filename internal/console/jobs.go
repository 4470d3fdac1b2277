package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/deadletter"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

func urlQuery(s string) string { return url.QueryEscape(s) }

// Where a job is.
const (
	WhereAnswered   = "answered"
	WhereWaiting    = "waiting"
	WhereDeadLetter = "dead letter"
	WhereUnknown    = "unknown"
	// WhereNotKnown: a lookup failed (NATS down, a timeout) and the others
	// found nothing: the job may exist all the same.
	WhereNotKnown = "not known"
)

// maxWaitingScan bounds the waiting jobs a lookup reads to find one that
// has no result.
const maxWaitingScan = 20000

// maxCopyScan bounds the search for a copy of an answered job waiting.
const maxCopyScan = 1000

// JobView is a job lookup's answer.
type JobView struct {
	JobID, Lane string
	Where       string
	Subject     string // the result's, or the stream subject it waits on
	Stream      string
	Seq         uint64
	Stored      time.Time
	Result      string
	Letters     []LetterRow
	// Elsewhere are dead letters of the same job id in other lanes: other
	// jobs, but most often the one looked for, in the lane it went to.
	Elsewhere []LetterRow
	// Status is an answered job's result status (scored, degraded,
	// rejected).
	Status string
	Note   string
	Err    string
	// Invalid says why nothing was looked up.
	Invalid string
	// WaitingStream and WaitingSeq name a copy of an answered job waiting
	// to be served (a replay, a resubmission): it will be answered with
	// the stored result.
	WaitingStream string
	WaitingSeq    uint64
	// OtherLane is a lane where a job with this id has a result, when it
	// has none in Lane.
	OtherLane string
}

// FindJob looks job jobID of lane up: its stored result (the last message
// on job.ResultSubject), else the job waiting in a job stream, else its
// dead letters, else unknown, or not known when a lookup failed. Its dead
// letters are listed whatever it is (a rejected job's, a copy's
// job_id_conflict), and those of the same id in other lanes beside them.
func (c *Console) FindJob(ctx context.Context, lane, jobID string) (v JobView) {
	v = JobView{JobID: jobID, Lane: lane, Where: WhereUnknown}
	var errs []string
	failed := func(err error) { errs = append(errs, err.Error()) }
	defer func() {
		v.Err = strings.Join(errs, "; ")
		if v.Where == WhereUnknown && len(errs) > 0 {
			v.Where = WhereNotKnown
		}
	}()
	if err := c.connected(); err != nil {
		failed(err)
		return v
	}
	letters := func() {
		rows, _, _, err := c.Letters(ctx, 0, filterJob(jobID), 20)
		if err != nil {
			failed(err)
		}
		for _, r := range rows {
			if r.Lane == lane {
				v.Letters = append(v.Letters, r)
			} else {
				v.Elsewhere = append(v.Elsewhere, r)
			}
		}
	}
	results, err := c.js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		failed(fmt.Errorf("stream %s: %w", topology.ResultsStream, err))
	} else {
		subject := job.ResultSubject(lane, jobID)
		m, gerr := results.GetLastMsgForSubject(ctx, subject)
		switch {
		case gerr == nil:
			v.Where, v.Subject, v.Stream, v.Seq, v.Stored = WhereAnswered, subject, topology.ResultsStream, m.Sequence, m.Time
			v.Result, _, _ = showPayload(m.Data)
			var r struct{ Status string }
			if json.Unmarshal(m.Data, &r) == nil {
				v.Status = r.Status
			}
			// A copy waiting beside it (a replay, a resubmission): looked
			// for among fewer jobs, since most answered jobs have none.
			v.WaitingStream, v.WaitingSeq = c.waiting(ctx, lane, jobID, maxCopyScan, failed, &v.Note)
			letters()
			return v
		case !errors.Is(gerr, jetstream.ErrMsgNotFound):
			failed(fmt.Errorf("result on %s: %w", subject, gerr))
		}
	}
	if stream, seq := c.waiting(ctx, lane, jobID, maxWaitingScan, failed, &v.Note); seq != 0 {
		v.Where, v.Stream, v.Seq = WhereWaiting, stream, seq
		v.Subject = topology.JobsPrefix + lane
		if stream == topology.BulkStream {
			v.Subject = topology.BulkPrefix + lane
		}
		letters() // a replayed letter kept beside its waiting copy
		return v
	}
	letters()
	if len(v.Letters) > 0 {
		v.Where = WhereDeadLetter
	}
	if v.Where == WhereUnknown && results != nil {
		// Most often the lane field was left empty: say where the id
		// has a result.
		if m, err := results.GetLastMsgForSubject(ctx, topology.ResultsPrefix+"*."+job.ResultToken(jobID)); err == nil {
			v.OtherLane = strings.TrimPrefix(strings.TrimSuffix(m.Subject, "."+job.ResultToken(jobID)), topology.ResultsPrefix)
		}
	}
	return v
}

// waiting returns the stream and sequence of a copy of job jobID of lane
// waiting in a job stream (interactive first), or 0; failed gets what
// could not be read, and note, if not nil, says when the search was cut
// short.
func (c *Console) waiting(ctx context.Context, lane, jobID string, limit int, failed func(error), note *string) (string, uint64) {
	for _, s := range []struct{ stream, subject string }{
		{topology.JobsStream, topology.JobsPrefix + lane}, {topology.BulkStream, topology.BulkPrefix + lane},
	} {
		seq, capped, err := c.findWaiting(ctx, s.stream, s.subject, jobID, limit)
		if err != nil {
			failed(fmt.Errorf("stream %s: %w", s.stream, err))
			continue
		}
		if seq != 0 {
			return s.stream, seq
		}
		if capped && note != nil {
			*note = fmt.Sprintf("only the first %d jobs waiting on %s were searched", limit, s.subject)
		}
	}
	return "", 0
}

// findWaiting returns the sequence of the job waiting on subject whose id
// is jobID: by its Nats-Msg-Id (the job id alone, the producer's
// <lane>/<job_id>, or <lane>/<job_id>/<digest> of a corrected job), by the id a replay or requeue carries over, or by the
// job_id in its payload (a job published without a Nats-Msg-Id, and its
// requeued copies). A work queue takes no second
// consumer that does not acknowledge, so the jobs are read one get at a
// time, at most limit of them.
func (c *Console) findWaiting(ctx context.Context, stream, subject, jobID string, limit int) (seq uint64, capped bool, err error) {
	st, err := c.js.Stream(ctx, stream)
	if err != nil {
		return 0, false, err
	}
	next := st.CachedInfo().State.FirstSeq
	for range limit {
		m, err := st.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		if job.JobIDOfMsgID(topology.Lane(subject), m.Header.Get(jetstream.MsgIDHeader)) == jobID ||
			consumer.CarriedJobID(m.Header) == jobID || payloadJobID(m.Data) == jobID {
			return m.Sequence, false, nil
		}
		next = m.Sequence + 1
	}
	return 0, true, nil
}

// payloadJobID reads the job_id of a job's payload, "" when it has none.
func payloadJobID(data []byte) string {
	var j struct {
		JobID string `json:"job_id"`
	}
	_ = json.Unmarshal(data, &j)
	return j.JobID
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request) {
	id, lane := strings.TrimSpace(r.FormValue("job_id")), strings.TrimSpace(r.FormValue("lane"))
	if lane == "" {
		lane = "default"
	}
	var v JobView
	switch {
	case id == "":
		v = JobView{Lane: lane}
	case !job.ValidLane(lane):
		c.page(w, r, http.StatusBadRequest, "job.html", JobView{JobID: id, Lane: lane,
			Invalid: fmt.Sprintf("%q is not a lane: a lane is one word of letters, digits, '-' and '_' (empty: default).", lane)})
		return
	case !job.ValidJobID(id):
		// No job has it: no result is stored under it, nor can one wait
		// under it. A job whose id could not be read was dead-lettered
		// under its Nats-Msg-Id or seq-<n>, which the dead letters list.
		c.page(w, r, http.StatusBadRequest, "job.html", JobView{JobID: id, Lane: lane,
			Invalid: fmt.Sprintf("%q is not a job_id: a job_id is 1 to 128 characters of letters, digits, '.', '_', ':' and '-'. A job whose id could not be read is dead-lettered under its Nats-Msg-Id, or seq-<its sequence>, as the dead letters page lists it.", id)})
		return
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		v = c.FindJob(ctx, lane, id)
	}
	code := http.StatusOK
	if v.Where == WhereNotKnown {
		code = http.StatusServiceUnavailable
	}
	c.page(w, r, code, "job.html", v)
}

func (c *Console) breakerReset(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var reply server.BreakerReply
	if err := call(r.Context(), c.cfg.NC, id, server.EndpointBreakerReset, &reply); err != nil {
		c.failed(w, r, http.StatusBadGateway, message{Title: "Breaker not reset", Text: err.Error(), Back: "/"})
		return
	}
	name := c.workerName(r.Context(), id)
	c.log("breaker reset", "worker", name, "state", reply.State)
	c.done(w, r, message{Title: "Breaker reset",
		Text: fmt.Sprintf("Worker %s: breaker %s, now %s.", name, reply.Status, reply.State), Back: "/"})
}

// workerName is "<WORKER_ID> (<service id>)", or the service id alone
// when the worker does not say its WORKER_ID.
func (c *Console) workerName(ctx context.Context, id string) string {
	var st server.Status
	if call(ctx, c.cfg.NC, id, server.EndpointStatus, &st) == nil && st.WorkerID != "" {
		return st.WorkerID + " (" + id + ")"
	}
	return id
}

// CacheReportView is a worker's cache report page.
type CacheReportView struct {
	Worker string
	Report string
}

func (c *Console) cacheReport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var rep semcache.Report
	if err := call(r.Context(), c.cfg.NC, id, server.EndpointCacheReport, &rep); err != nil {
		c.page(w, r, http.StatusBadGateway, "message.html", message{Title: "No cache report", Text: err.Error(), Back: "/"})
		return
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		c.page(w, r, http.StatusBadGateway, "message.html", message{Title: "No cache report", Text: err.Error(), Back: "/"})
		return
	}
	c.page(w, r, http.StatusOK, "cache.html", CacheReportView{Worker: c.workerName(r.Context(), id), Report: b.String()})
}

func filterJob(id string) deadletter.Filter { return deadletter.Filter{JobID: []string{id}} }
