package tracing_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/scoring"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/source"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// benchHandle measures the Handler on a job whose analyses are in memory,
// the worker's hot path; traced, ctx carries a recording job span, as the
// pump gives it.
func benchHandle(b *testing.B, traced bool) {
	cache, _ := semcache.New(context.Background(), semcache.Config{}, source.Loader{Source: source.Builtin})
	defer cache.Close()
	svc, _ := scoring.New(cache, scoring.DefaultConfig(), nil)
	h := &scoring.JobHandler{Scorer: svc, WorkerID: "bench", Limits: job.Limits{MaxTextBytes: 16384, MaxJobBytes: 65536}, RetryBackoff: time.Second}
	data := []byte(`{"job_id":"job-1","task_description":"Implement OAuth2 authentication with JWT tokens for the payments API","historical_pattern_text":"Build user authentication using the OAuth2 protocol","vector_similarity":0.83,"task_characteristics":{"complexity":"complex","feature_label":"auth"}}`)
	ctx := context.Background()
	if traced {
		tp := sdktrace.NewTracerProvider() // records, exports nowhere
		b.Cleanup(tracing.Install(tp))
		var span trace.Span
		ctx, span = tracing.Tracer().Start(ctx, tracing.SpanJob)
		defer span.End()
	}
	d := consumer.Delivery{Subject: "scoring.jobs.default", Data: data, Lane: "default", Attempt: 1, Received: time.Now(), MayBlock: true}
	if rep := h.Handle(ctx, &d); rep.Disposition != consumer.Publish || rep.Status != "scored" {
		b.Fatalf("%+v", rep)
	}
	d.MayBlock = false
	b.ReportAllocs()
	for b.Loop() {
		rep := h.Handle(ctx, &d)
		if rep.Disposition != consumer.Publish {
			b.Fatal(rep.Disposition)
		}
		rep.Release(rep.Result)
	}
}

// BenchmarkHandleCached is the cost of tracing on the hot path: nothing
// when off, the decode and similarity spans when on.
func BenchmarkHandleCached(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchHandle(b, false) })
	b.Run("on", func(b *testing.B) { benchHandle(b, true) })
}
