// Package producer publishes hybridscore jobs and collects their results.
//
// # Connecting
//
// Connect to NATS with nats.go as usual (the least-privilege "producer" user
// of deployments/nats/nats.conf is enough) and wrap the connection:
//
//	nc, _ := nats.Connect(url, nats.UserInfo("producer", password))
//	client, _ := producer.NewClient(nc)
//
// # One job
//
// Publish sends a job to scoring.jobs.<lane> and returns once the stream has
// stored it. The worker stores its result on the job's own subject,
// job.ResultSubject(lane, job_id) = scoring.results.<lane>.<job>, and
// sends a copy to the job's reply_subject when it has one. Read a lane's
// results through JetStream (a consumer of SCORING_RESULTS filtered on
// scoring.results.<lane>.*, as Batch does): a core subscription there also
// sees a worker's stores that the server refused (a job answered before,
// computed again; a job_id reused for other content). Submit publishes and
// waits for the stored answer; Stored reads one.
//
// Every job carries its lane and job_id as Nats-Msg-Id (job.MsgID; a job
// Batch publishes again because it was corrected after its rejection
// carries its content's digest too, job.ContentMsgID):
// publishing the same job again within the stream's duplicate window is
// reported as a duplicate (the same job_id on another lane is another job),
// and at any later time the worker finds the stored result and sends it
// again to the job's reply subject, marked Hybridscore-Repeat: true: one
// stored result per job (docs/contract.md#guarantees). Leave JobID empty and Submit derives it
// from the content (DeriveJobID), so a retried submission is the same job.
//
// # Many jobs
//
// Batch streams a Source (NewSource reads JSONL or CSV, one job at a time)
// with a rate limit and a bound on jobs awaiting their result, writes each
// result to Out as a JSON line, skips jobs whose results are already there
// (Answered, for resuming), and returns a Summary. With Bulk the jobs go to
// scoring.bulk.<lane>, the bulk class, which workers serve after interactive
// jobs without starving it.
//
// # Errors and tracing
//
// Publishing errors wrap the NATS error; a result that does not come within
// Submit's timeout is ErrNoResult, a job_id reused for other content
// ErrConflict, a job dead-lettered without an answer ErrDeadLettered. When the program installs an
// OpenTelemetry provider (internal/tracing does it from OTEL_* variables in
// the publisher), every job carries its span's trace context in its headers
// and the worker continues the trace.
package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Client publishes jobs. Safe for concurrent use.
type Client struct {
	NC *nats.Conn
	JS jetstream.JetStream
}

// NewClient wraps a connection.
func NewClient(nc *nats.Conn) (*Client, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	return &Client{NC: nc, JS: js}, nil
}

// Publish sends one job to scoring.jobs.<lane> with Nats-Msg-Id
// <lane>/<job_id> (job.MsgID) and
// waits for the stream's PubAck. dup reports a duplicate inside the window.
// The message carries the trace context (traceparent, tracestate) of its
// span, a child of ctx's, when the process traces
// (docs/operations.md#tracing).
func (c *Client) Publish(ctx context.Context, lane string, w job.Wire) (dup bool, err error) {
	if err := checkLane(lane); err != nil {
		return false, err
	}
	data, err := json.Marshal(w)
	if err != nil {
		return false, err
	}
	msg := &nats.Msg{Subject: topology.JobsPrefix + lane, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{job.MsgID(lane, w.JobID)}}}
	ctx, span := startProduce(ctx, msg)
	defer span.End()
	ack, err := c.JS.PublishMsg(ctx, msg, publishRetries...)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return false, fmt.Errorf("publish job %s: %w", w.JobID, err)
	}
	span.SetAttributes(attribute.Bool("duplicate", ack.Duplicate))
	return ack.Duplicate, nil
}

// publishRetries ride out a stream without a leader for up to 5 s: while
// a replicated stream elects a new one (a node lost or restarted), or
// while the worker is still creating the streams, a publish has no
// responder. nats.go retries twice in 0.5 s by default, less than an
// election may take on a loaded cluster; a retry is safe, since the job's
// Nats-Msg-Id keeps a second copy out of the stream.
var publishRetries = []jetstream.PublishOpt{jetstream.WithRetryAttempts(20), jetstream.WithRetryWait(250 * time.Millisecond)}

// tracer is the tracer of OpenTelemetry's global provider, looked up at
// each use: a program that traces installs its provider there
// (tracing.Setup does), and with none it records nothing.
func tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(tracing.ScopeName) }

// startProduce starts the span of one job message, a child of ctx's, and
// puts its trace context in the message's headers.
func startProduce(ctx context.Context, m *nats.Msg) (context.Context, trace.Span) {
	ctx, span := tracer().Start(ctx, tracing.SpanProduce, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		msgID := m.Header.Get(jetstream.MsgIDHeader)
		id := job.JobIDOfMsgID(topology.Lane(m.Subject), msgID)
		span.SetAttributes(tracing.MessagingNATS, semconv.MessagingOperationTypeSend, semconv.MessagingDestinationName(m.Subject),
			semconv.MessagingMessageID(msgID), tracing.AttrJobID.String(id))
	}
	tracing.Inject(ctx, m.Header)
	return ctx, span
}

// ErrNoResult is returned when no result arrived in time.
var ErrNoResult = errors.New("producer: no result before the timeout")

// ErrConflict is the error of a job whose job_id was answered before for
// other content: Submit's, and Batch's for the jobs of Summary.Conflicts.
// Within the jobs stream's duplicate window the stream dropped the job and
// the stored answer is the other job's; after it, a worker dead-lettered
// the job as job_id_conflict.
var ErrConflict = errors.New("producer: job_id reused for other content")

// ErrDeadLettered is Submit's error for a job a worker dead-lettered
// without answering it (max_deliveries, internal); the error names the
// reason and the worker's message.
var ErrDeadLettered = errors.New("producer: job dead-lettered")

// ErrNotAnswered is returned by Stored for a job whose result is not
// stored (not answered yet, or aged out of the result stream).
var ErrNotAnswered = errors.New("producer: no stored result")

// Stored returns the stored result of a job of lane: the one message on
// its subject job.ResultSubject(lane, jobID) in the result stream.
func (c *Client) Stored(ctx context.Context, lane, jobID string) (json.RawMessage, error) {
	m, err := c.storedMsg(ctx, lane, jobID)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// storedMsg is Stored's message, headers included.
func (c *Client) storedMsg(ctx context.Context, lane, jobID string) (*jetstream.RawStreamMsg, error) {
	s, err := c.JS.Stream(ctx, topology.ResultsStream)
	if err != nil {
		return nil, err
	}
	m, err := s.GetLastMsgForSubject(ctx, job.ResultSubject(lane, jobID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w (job %s of lane %s)", ErrNotAnswered, jobID, lane)
	}
	return m, err
}

// checkLane refuses a lane that is not one token of [A-Za-z0-9_-]+.
func checkLane(lane string) error {
	if !job.ValidLane(lane) {
		return fmt.Errorf("lane %q is not one token of [A-Za-z0-9_-]", lane)
	}
	return nil
}
