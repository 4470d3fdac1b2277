package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// rig is one process holding the whole path: embedded NATS, a worker whose
// langextract is the fake behind an HTTP server that remembers the
// traceparent of every analysis request, a producer client, and core
// subscriptions that see the job and result messages' headers.
type rig struct {
	client *producer.Client
	fake   *langextractd.Server

	mu          sync.Mutex
	leParents   []string      // traceparent of each /analyze/semantic request ("" when none)
	jobHeaders  []nats.Header // of the job messages
	resultHdrs  []nats.Header // of the result messages
	resultTexts []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{fake: langextractd.New(langextractd.Faults{})}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/analyze/semantic" {
			r.mu.Lock()
			r.leParents = append(r.leParents, req.Header.Get("traceparent"))
			r.mu.Unlock()
		}
		r.fake.ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(r.fake.Close)
	ns := workertest.NATS(t)
	workertest.Worker(t, ns.ClientURL(), func(c *config.Config) { c.LangextractURL = hs.URL })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe("scoring.jobs.>", func(m *nats.Msg) {
		r.mu.Lock()
		r.jobHeaders = append(r.jobHeaders, m.Header)
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("scoring.results.>", func(m *nats.Msg) {
		r.mu.Lock()
		r.resultHdrs = append(r.resultHdrs, m.Header)
		r.resultTexts = append(r.resultTexts, string(m.Data))
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if r.client, err = producer.NewClient(nc); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) submit(t *testing.T, ctx context.Context, w job.Wire) string {
	t.Helper()
	res, err := r.client.Submit(ctx, "default", w, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res), `"status":"scored"`) {
		t.Fatalf("result %s", res)
	}
	return string(res)
}

// parentOf returns the parent span id written in a traceparent header,
// and its trace id.
func parentOf(t *testing.T, tp string) (trace.TraceID, trace.SpanID) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" {
		t.Fatalf("traceparent %q", tp)
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("traceparent %q: %v %v", tp, err1, err2)
	}
	return tid, sid
}

func byName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// inTrace returns the ended spans of one trace.
func inTrace(sr *tracetest.SpanRecorder, id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func TestOneTraceFromProducerThroughWorkerToLangextract(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(tracing.Install(tp))
	r := newRig(t)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "test.caller")
	r.submit(t, ctx, job.Wire{TaskDescription: "Implement OAuth2 authentication with JWT tokens for the billing API",
		HistoricalPatternText: "Build user authentication using the OAuth2 protocol", VectorSimilarity: 0.8})
	parent.End()
	tid := parent.SpanContext().TraceID()
	// The job span ends when the job is acked, just after its result left.
	eventually.True(t, 10*time.Second, func() bool { return len(byName(inTrace(sr, tid), tracing.SpanJob)) == 1 }, "the job span ended")

	spans := inTrace(sr, tid)
	for _, s := range sr.Ended() {
		if s.SpanContext().TraceID() != tid {
			t.Errorf("span %s in trace %s, not the caller's %s", s.Name(), s.SpanContext().TraceID(), tid)
		}
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		got := byName(spans, name)
		if len(got) != 1 {
			t.Fatalf("%d %s spans, want 1", len(got), name)
		}
		return got[0]
	}
	submit, produce, jobSpan := one(tracing.SpanSubmit), one(tracing.SpanProduce), one(tracing.SpanJob)
	if submit.Parent().SpanID() != parent.SpanContext().SpanID() || produce.Parent().SpanID() != submit.SpanContext().SpanID() {
		t.Fatalf("producer spans not under the caller's: submit's parent %s, produce's parent %s", submit.Parent().SpanID(), produce.Parent().SpanID())
	}
	if jobSpan.Parent().SpanID() != produce.SpanContext().SpanID() || !jobSpan.Parent().IsRemote() {
		t.Fatalf("job span's parent %s (remote %v), want the producer's span %s", jobSpan.Parent().SpanID(), jobSpan.Parent().IsRemote(), produce.SpanContext().SpanID())
	}
	if jobSpan.SpanKind() != trace.SpanKindConsumer || attr(jobSpan, "hybridscore.status") != "scored" || attr(jobSpan, "hybridscore.job_id") == "" ||
		attr(jobSpan, "messaging.destination.name") != "scoring.jobs.default" {
		t.Fatalf("job span %v %v", jobSpan.SpanKind(), jobSpan.Attributes())
	}
	jobID := jobSpan.SpanContext().SpanID()
	// Both texts were new: the job was decoded on the pool, found missing
	// from memory, and handled again where it may wait.
	children := map[string]int{}
	for _, s := range spans {
		if s.Parent().SpanID() == jobID {
			children[s.Name()]++
		}
	}
	want := map[string]int{tracing.SpanDecode: 2, tracing.SpanCache: 2, tracing.SpanSimilarity: 1, tracing.SpanPublish: 1}
	for name, n := range want {
		if children[name] != n {
			t.Errorf("%d %s spans under the job span, want %d (children %v)", children[name], name, n, children)
		}
	}
	caches := map[trace.SpanID]bool{}
	for _, c := range byName(spans, tracing.SpanCache) {
		caches[c.SpanContext().SpanID()] = true
		if attr(c, "hybridscore.cache") != "miss" {
			t.Errorf("cache span %v, want a miss", c.Attributes())
		}
	}
	// The analyses: one langextract span per request, each under its
	// text's cache span, and each request carried its own span's context.
	les := byName(spans, tracing.SpanLangextract)
	if len(les) != 2 {
		t.Fatalf("%d langextract spans, want 2", len(les))
	}
	leIDs := map[trace.SpanID]bool{}
	for _, l := range les {
		leIDs[l.SpanContext().SpanID()] = true
		if !caches[l.Parent().SpanID()] || l.SpanKind() != trace.SpanKindClient || attr(l, "http.response.status_code") != "200" {
			t.Errorf("langextract span: parent %s, kind %v, attributes %v", l.Parent().SpanID(), l.SpanKind(), l.Attributes())
		}
	}
	// The stored result reaches the rig's subscriber on its own goroutine,
	// maybe after Submit returned with its copy.
	eventually.True(t, 5*time.Second, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.resultHdrs) > 0 }, "the stored result seen")
	r.mu.Lock()
	leParents := append([]string(nil), r.leParents...)
	jobHeaders, resultHdrs := append([]nats.Header(nil), r.jobHeaders...), append([]nats.Header(nil), r.resultHdrs...)
	r.mu.Unlock()
	if len(leParents) != 2 {
		t.Fatalf("langextract got %d requests, want 2", len(leParents))
	}
	for _, h := range leParents {
		if tr, sp := parentOf(t, h); tr != tid || !leIDs[sp] {
			t.Errorf("langextract request's traceparent %q: not a langextract span of the trace", h)
		}
	}
	// The job message carried the producer's span; the result carries the
	// publish span, so a consumer of results continues the same trace.
	if len(jobHeaders) != 1 || len(resultHdrs) != 1 {
		t.Fatalf("%d job and %d result messages seen, want 1 and 1", len(jobHeaders), len(resultHdrs))
	}
	if tr, sp := parentOf(t, jobHeaders[0].Get("traceparent")); tr != tid || sp != produce.SpanContext().SpanID() {
		t.Errorf("job message's traceparent %q, want the produce span %s", jobHeaders[0].Get("traceparent"), produce.SpanContext().SpanID())
	}
	publish := one(tracing.SpanPublish)
	if tr, sp := parentOf(t, resultHdrs[0].Get("traceparent")); tr != tid || sp != publish.SpanContext().SpanID() {
		t.Errorf("result's traceparent %q, want the publish span %s", resultHdrs[0].Get("traceparent"), publish.SpanContext().SpanID())
	}
	if cont := trace.SpanContextFromContext(tracing.Extract(context.Background(), resultHdrs[0])); cont.TraceID() != tid || !cont.IsRemote() {
		t.Errorf("the result's headers do not continue the trace: %v", cont)
	}
	if ev := publish.Events(); len(ev) != 1 || ev[0].Name != "result stored" {
		t.Errorf("publish span events %v, want the store's outcome", ev)
	}

	// The same texts again: scored from memory on the pool, with no cache
	// or langextract span, and a similarity span recorded after the fact.
	ctx2, parent2 := tp.Tracer("test").Start(context.Background(), "test.caller")
	r.submit(t, ctx2, job.Wire{TaskDescription: "Implement OAuth2 authentication with JWT tokens for the billing API",
		HistoricalPatternText: "Build user authentication using the OAuth2 protocol", VectorSimilarity: 0.6})
	parent2.End()
	tid2 := parent2.SpanContext().TraceID()
	eventually.True(t, 10*time.Second, func() bool { return len(byName(inTrace(sr, tid2), tracing.SpanJob)) == 1 }, "the second job span ended")
	spans2 := inTrace(sr, tid2)
	job2 := byName(spans2, tracing.SpanJob)[0].SpanContext().SpanID()
	children = map[string]int{}
	for _, s := range spans2 {
		if s.Parent().SpanID() == job2 {
			children[s.Name()]++
		}
	}
	if children[tracing.SpanDecode] != 1 || children[tracing.SpanSimilarity] != 1 || children[tracing.SpanPublish] != 1 ||
		len(byName(spans2, tracing.SpanCache)) != 0 || len(byName(spans2, tracing.SpanLangextract)) != 0 {
		t.Errorf("cached job's spans under the job span: %v (cache %d, langextract %d)", children,
			len(byName(spans2, tracing.SpanCache)), len(byName(spans2, tracing.SpanLangextract)))
	}
	if s := byName(spans2, tracing.SpanSimilarity)[0]; attr(s, "hybridscore.cache") != "memory" || s.EndTime().Before(s.StartTime()) {
		t.Errorf("cached similarity span %v from %v to %v", s.Attributes(), s.StartTime(), s.EndTime())
	}
}

func TestTracingOffRecordsAndAddsNothing(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	// Installed and removed again: OpenTelemetry's global provider still
	// hands its tracers to tp, so this also shows removal really ends it.
	tracing.Install(tp)()
	if tracing.Enabled() {
		t.Fatal("tracing enabled after its provider was removed")
	}
	r := newRig(t)
	r.submit(t, context.Background(), job.Wire{TaskDescription: "Migrate the invoice service to PostgreSQL 17",
		HistoricalPatternText: "Upgrade the billing database and move its data", VectorSimilarity: 0.5})
	eventually.True(t, 10*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.resultHdrs) == 1
	}, "the result seen")
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.leParents) != 2 || len(r.jobHeaders) != 1 {
		t.Fatalf("%d langextract requests and %d job messages, want 2 and 1", len(r.leParents), len(r.jobHeaders))
	}
	for _, h := range r.leParents {
		if h != "" {
			t.Errorf("langextract request with traceparent %q", h)
		}
	}
	for _, h := range []nats.Header{r.jobHeaders[0], r.resultHdrs[0]} {
		if _, ok := h["traceparent"]; ok {
			t.Errorf("message headers %v carry a traceparent", h)
		}
	}
	if n := len(sr.Started()); n != 0 {
		t.Errorf("%d spans started with tracing off", n)
	}
}
