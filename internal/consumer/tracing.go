package consumer

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/resultstore"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Tracing, when on (docs/operations.md#tracing): a delivery's span
// continues the trace its message's headers carry and lasts from receipt
// to ack, nak or term; the Handler runs in its context, and the Reply's
// publish has a span of its own whose context the result's headers carry.
// None of this runs while tracing is off.

// startJob starts the span of it's delivery, as a child of the producer's
// span when the message carries one, and returns the Handler's context.
func (w *Worker) startJob(ctx context.Context, it *item) context.Context {
	d := &it.d
	it.tctx, it.span = tracing.Tracer().Start(tracing.Extract(ctx, d.Header), tracing.SpanJob,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(d.Received),
		trace.WithAttributes(tracing.MessagingNATS, semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(d.Subject), semconv.MessagingMessageID(d.Header.Get(jetstream.MsgIDHeader)),
			tracing.AttrLane.String(d.Lane), tracing.AttrClass.String(d.Class.String()), tracing.AttrAttempt.Int(d.Attempt)))
	return it.tctx
}

// startPublish starts the span of the Reply's store.
func (w *Worker) startPublish(it *item) {
	_, it.pub = tracing.Tracer().Start(it.tctx, tracing.SpanPublish, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.MessagingNATS, semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(it.rep.Subject), semconv.MessagingMessageID(it.rep.JobID)))
}

// event marks the end of the store.
func event(span trace.Span, res resultstore.Result) {
	attrs := []attribute.KeyValue{attribute.String("outcome", res.Outcome.String())}
	if res.Err != nil {
		attrs = append(attrs, attribute.String("error", res.Err.Error()), attribute.String("stage", res.Stage))
	}
	span.AddEvent("result "+res.Outcome.String(), trace.WithAttributes(attrs...))
}

// endJob ends the delivery's spans with its outcome. A job that was not
// answered this time (naked, dead-lettered) or was rejected is an error of
// the trace, so that a search for failed traces finds it.
func endJob(it *item, status string) {
	attrs := []attribute.KeyValue{tracing.AttrStatus.String(status)}
	if it.rep.JobID != "" {
		attrs = append(attrs, tracing.AttrJobID.String(it.rep.JobID))
	}
	if it.rep.CorrelationID != "" {
		attrs = append(attrs, tracing.AttrCorrelationID.String(it.rep.CorrelationID))
	}
	if it.rep.FallbackReason != "" {
		attrs = append(attrs, tracing.AttrFallbackReason.String(it.rep.FallbackReason))
	}
	if it.rep.Disposition == Reject || it.rep.Disposition == Fail {
		attrs = append(attrs, tracing.AttrErrorCode.String(it.rep.Reason))
	}
	if it.pub != nil {
		if status != it.rep.Status && status != StatusDuplicate {
			it.pub.SetStatus(codes.Error, status)
		}
		it.pub.End()
	}
	it.span.SetAttributes(attrs...)
	switch status {
	case StatusNaked, StatusDeadLettered:
		it.span.SetStatus(codes.Error, status+": "+it.rep.Message)
	case job.StatusRejected:
		it.span.SetStatus(codes.Error, "rejected: "+it.rep.Reason)
	}
	it.span.End()
}
