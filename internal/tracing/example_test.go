package tracing_test

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/tracing"
)

// A producer puts its span's context in a job message's headers; the
// worker reads it back and starts the job's span as its child. A program
// calls Setup with its configuration instead of Install.
func Example() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	restore := tracing.Install(tp)
	defer restore()

	ctx, produce := tracing.Tracer().Start(context.Background(), tracing.SpanProduce, trace.WithSpanKind(trace.SpanKindProducer))
	msg := nats.NewMsg("scoring.jobs.default")
	tracing.Inject(ctx, msg.Header)
	produce.End()

	// On the worker's side of the queue.
	wctx := tracing.Extract(context.Background(), msg.Header)
	_, job := tracing.Tracer().Start(wctx, tracing.SpanJob, trace.WithSpanKind(trace.SpanKindConsumer))
	job.End()

	spans := exp.GetSpans()
	fmt.Println("traceparent sent:", msg.Header.Get("traceparent") != "")
	fmt.Println(spans[1].Name, "is a child of", spans[0].Name+":", spans[1].Parent.SpanID() == spans[0].SpanContext.SpanID())
	fmt.Println("one trace:", spans[0].SpanContext.TraceID() == spans[1].SpanContext.TraceID())
	// Output:
	// traceparent sent: true
	// hybridscore.job is a child of hybridscore.produce: true
	// one trace: true
}
