package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hybridscore/hybridscore/internal/tracing"
)

func TestOffUnlessConfigured(t *testing.T) {
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{ServiceName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	if tracing.Enabled() || (tracing.Config{}).On() {
		t.Fatal("tracing on with nothing configured")
	}
	_, span := tracing.Tracer().Start(context.Background(), "x")
	if span.IsRecording() {
		t.Fatal("the tracer records with tracing off")
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	for env, c := range map[string]tracing.Config{
		"OTEL_TRACES_EXPORTER":               {Exporter: "jaeger"},
		"OTEL_EXPORTER_OTLP_ENDPOINT":        {Endpoint: "collector:4318"},
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": {TracesEndpoint: "ftp://collector/v1/traces"},
		"needs OTEL_EXPORTER_OTLP_ENDPOINT":  {Exporter: "otlp"},
	} {
		err := c.Validate()
		if !errors.Is(err, tracing.ErrConfig) || !strings.Contains(err.Error(), env) {
			t.Errorf("%s: %v", env, err)
		}
		if _, err := tracing.Setup(context.Background(), c); err == nil {
			t.Errorf("%s: Setup accepted %+v", env, c)
		}
	}
	for _, c := range []tracing.Config{{}, {Exporter: "NONE", Endpoint: "http://c:4318"}, {Exporter: "console"},
		{Endpoint: "https://collector:4318"}, {TracesEndpoint: "http://127.0.0.1:4318/custom/path"}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestConsoleExporterWritesEverySpanAtShutdown(t *testing.T) {
	var buf bytes.Buffer
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: "console", Console: &buf, ServiceName: "hybridscore-test"})
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Enabled() {
		t.Fatal("not enabled")
	}
	ctx, parent := tracing.Tracer().Start(context.Background(), tracing.SpanJob)
	_, child := tracing.Tracer().Start(ctx, tracing.SpanDecode)
	child.End()
	parent.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tracing.Enabled() {
		t.Fatal("still enabled after shutdown")
	}
	var names []string
	dec := json.NewDecoder(&buf)
	for {
		var s struct {
			Name     string
			Resource []struct {
				Key   string
				Value struct{ Value any }
			}
		}
		if err := dec.Decode(&s); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, s.Name)
		found := false
		for _, kv := range s.Resource {
			found = found || (kv.Key == "service.name" && kv.Value.Value == "hybridscore-test")
		}
		if !found {
			t.Errorf("span %s without service.name hybridscore-test: %+v", s.Name, s.Resource)
		}
	}
	if strings.Join(names, ",") != tracing.SpanDecode+","+tracing.SpanJob {
		t.Fatalf("spans written %v", names)
	}
}

func TestSamplerFromTheEnvironment(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	var buf bytes.Buffer
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: "console", Console: &buf})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Tracer().Start(context.Background(), tracing.SpanJob)
	recording := span.IsRecording()
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recording || buf.Len() != 0 {
		t.Fatalf("sampled despite OTEL_TRACES_SAMPLER=always_off: recording %v, output %q", recording, buf.String())
	}
}

// TestOTLPExport sends spans to a real OTLP/HTTP receiver: the base
// endpoint gets /v1/traces appended, the traces endpoint is used as given.
func TestOTLPExport(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		cfg        func(url string) tracing.Config
	}{
		{"endpoint", "/v1/traces", func(u string) tracing.Config { return tracing.Config{Endpoint: u + "/"} }},
		{"traces endpoint", "/otlp/spans", func(u string) tracing.Config { return tracing.Config{TracesEndpoint: u + "/otlp/spans"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			var paths []string
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var req collectortrace.ExportTraceServiceRequest
				if r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				mu.Lock()
				paths = append(paths, r.URL.Path)
				for _, rs := range req.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							got = append(got, ss.Scope.GetName()+" "+s.Name)
						}
					}
				}
				mu.Unlock()
				w.Header().Set("Content-Type", "application/x-protobuf")
				b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
				_, _ = w.Write(b)
			}))
			defer recv.Close()
			c := tc.cfg(recv.URL)
			c.ServiceName = "hybridscore-worker"
			shutdown, err := tracing.Setup(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			_, span := tracing.Tracer().Start(context.Background(), tracing.SpanPublish)
			span.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(paths) != 1 || paths[0] != tc.path || len(got) != 1 || got[0] != tracing.ScopeName+" "+tracing.SpanPublish {
				t.Fatalf("receiver got %v at %v", got, paths)
			}
		})
	}
}

func TestHeaderCarriesTraceContextAcrossNATSHeaders(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled, TraceState: mustState(t, "vendor=x")})
	h := nats.Header{"Nats-Msg-Id": []string{"job-1"}}
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	if got := h["traceparent"]; len(got) != 1 || got[0] != "00-01020300000000000000000000000000-0405060000000000-01" {
		t.Fatalf("traceparent %v (headers %v)", got, h)
	}
	if got := h.Get("tracestate"); got != "vendor=x" {
		t.Fatalf("tracestate %q", got)
	}
	back := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
	if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || !back.IsRemote() || back.TraceState().String() != "vendor=x" {
		t.Fatalf("extracted %+v", back)
	}
	empty := nats.Header{}
	tracing.Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Fatalf("a context without a span wrote %v", empty)
	}
	if trace.SpanContextFromContext(tracing.Extract(context.Background(), nil)).IsValid() {
		t.Fatal("nil headers gave a span context")
	}
}

func TestRemovalRestoresTheGlobals(t *testing.T) {
	before := otel.GetTextMapPropagator()
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: "console", Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if f := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(f, ","), "traceparent") {
		t.Fatalf("global propagator fields %v", f)
	}
	if _, span := otel.Tracer("x").Start(context.Background(), "y"); !span.IsRecording() {
		t.Fatal("the global tracer does not record while installed")
	}
	_ = shutdown(context.Background())
	_, span := otel.Tracer("x").Start(context.Background(), "y")
	if span.IsRecording() || otel.GetTextMapPropagator() != before {
		t.Fatalf("after shutdown: global tracer records %v, propagator restored %v", span.IsRecording(), otel.GetTextMapPropagator() == before)
	}
}

func mustState(t *testing.T, s string) trace.TraceState {
	t.Helper()
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
