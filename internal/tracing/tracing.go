// Package tracing follows one job across processes with OpenTelemetry: the
// W3C trace context (traceparent, tracestate) travels in NATS message
// headers from the producer to the worker and on to the result, and in HTTP
// headers to langextract, so a slow result can be traced to the step that
// took its time (docs/operations.md#tracing).
//
// Tracing is off unless configured: Setup installs nothing when no exporter
// is asked for, Enabled stays false, and the worker then neither reads
// headers nor starts spans, so a job costs what it cost before. Setup (or
// Install, in tests) makes a tracer provider the process's, for this
// package and for the OpenTelemetry globals that pkg/producer and other
// libraries use.
//
// The package knows nothing of NATS: Header is the carrier of any
// map[string][]string, which nats.Header is.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hybridscore/hybridscore/internal/redact"
)

// ScopeName is the instrumentation scope of every span this module starts.
const ScopeName = "github.com/hybridscore/hybridscore"

// Span names. A job's trace is submit → produce → job, and under job:
// decode, cache (→ langextract), similarity, publish.
const (
	SpanSubmit      = "hybridscore.submit"      // producer: one job published and its result awaited
	SpanProduce     = "hybridscore.produce"     // producer: one job message, until its PubAck
	SpanJob         = "hybridscore.job"         // worker: one delivery, from receipt to ack, nak or term
	SpanDecode      = "hybridscore.decode"      // worker: decoding and validating the job
	SpanCache       = "hybridscore.cache"       // worker: one text's features from the cache (a miss loads them)
	SpanLangextract = "hybridscore.langextract" // worker: one HTTP request to langextract
	SpanSimilarity  = "hybridscore.similarity"  // worker: pattern similarity and the combined score
	SpanPublish     = "hybridscore.publish"     // worker: result store and PubAck, lookup of a refused store, reply copy
)

// Attributes of this module's own (the rest follow OpenTelemetry's
// semantic conventions: messaging.*, http.*, server.*).
const (
	AttrJobID          = attribute.Key("hybridscore.job_id")
	AttrCorrelationID  = attribute.Key("hybridscore.correlation_id")
	AttrLane           = attribute.Key("hybridscore.lane")
	AttrClass          = attribute.Key("hybridscore.class")
	AttrAttempt        = attribute.Key("hybridscore.attempt")
	AttrStatus         = attribute.Key("hybridscore.status")
	AttrFallbackReason = attribute.Key("hybridscore.fallback_reason")
	AttrText           = attribute.Key("hybridscore.text")  // task or pattern
	AttrCache          = attribute.Key("hybridscore.cache") // memory, redis, shared, miss
	AttrPatternScore   = attribute.Key("hybridscore.pattern_score")
	AttrHybridScore    = attribute.Key("hybridscore.hybrid_score")
	AttrErrorCode      = attribute.Key("hybridscore.error_code")
)

// MessagingNATS is messaging.system for spans of NATS messages.
var MessagingNATS = semconv.MessagingSystemKey.String("nats")

// Exporters accepted by Config.Exporter (OTEL_TRACES_EXPORTER).
const (
	ExporterOTLP    = "otlp"    // OTLP over HTTP (protobuf)
	ExporterConsole = "console" // one JSON object per span, to Config.Console
	ExporterNone    = "none"
)

// Config says where spans go. The zero value exports nothing.
type Config struct {
	// Exporter is otlp, console or none; empty means otlp when an
	// endpoint is set, else none.
	Exporter string
	// Endpoint is the OTLP base URL (OTEL_EXPORTER_OTLP_ENDPOINT, e.g.
	// http://collector:4318); spans go to its /v1/traces.
	Endpoint string
	// TracesEndpoint is the full URL spans are sent to
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); it wins over Endpoint.
	TracesEndpoint string
	// ServiceName and ServiceVersion name the process in every span's
	// resource.
	ServiceName, ServiceVersion string
	// Console receives the console exporter's output; nil means stderr.
	Console io.Writer
}

// ErrConfig wraps every configuration error Setup and Validate return.
var ErrConfig = errors.New("tracing: invalid configuration")

// On reports whether c exports spans.
func (c Config) On() bool {
	e, err := c.exporter()
	return err == nil && e != ExporterNone
}

func (c Config) exporter() (string, error) {
	switch e := strings.ToLower(strings.TrimSpace(c.Exporter)); e {
	case "":
		if c.Endpoint != "" || c.TracesEndpoint != "" {
			return ExporterOTLP, nil
		}
		return ExporterNone, nil
	case ExporterOTLP, ExporterConsole, ExporterNone:
		return e, nil
	default:
		return "", fmt.Errorf("%w: OTEL_TRACES_EXPORTER %q: want otlp, console or none", ErrConfig, c.Exporter)
	}
}

// Validate checks the exporter name and the endpoints' URLs, naming the
// variable at fault.
func (c Config) Validate() error {
	e, err := c.exporter()
	if err != nil {
		return err
	}
	for _, v := range []struct{ env, url string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.TracesEndpoint}} {
		if v.url == "" {
			continue
		}
		if u, err := url.Parse(v.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL is shown redacted: it may hold a user and password.
			return fmt.Errorf("%w: %s %q: want http(s)://[user:password@]host:port[/path] (percent-encode # ? / @ in a password)", ErrConfig, v.env, redact.URL(v.url))
		}
	}
	if e == ExporterOTLP && c.Endpoint == "" && c.TracesEndpoint == "" {
		return fmt.Errorf("%w: OTEL_TRACES_EXPORTER=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ErrConfig)
	}
	return nil
}

// Setup makes a tracer provider exporting as c says the process's (see
// Install) and returns the function that flushes the spans not yet sent
// and removes it, to be called at shutdown. When c exports nothing it
// installs nothing and shutdown does nothing. The sampler follows
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default: parent-based,
// always on); OTEL_RESOURCE_ATTRIBUTES adds to the resource, and the
// OTLP exporter also reads OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and
// _COMPRESSION.
func Setup(ctx context.Context, c Config) (shutdown func(context.Context) error, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	e, _ := c.exporter()
	var exp sdktrace.SpanExporter
	switch e {
	case ExporterNone:
		return func(context.Context) error { return nil }, nil
	case ExporterConsole:
		w := c.Console
		if w == nil {
			w = os.Stderr
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
	case ExporterOTLP:
		target := c.TracesEndpoint
		if target == "" {
			target = strings.TrimRight(c.Endpoint, "/") + "/v1/traces"
		}
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(target))
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", e, redact.Error(err, c.Endpoint, c.TracesEndpoint))
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(c.ServiceName), semconv.ServiceVersion(c.ServiceVersion)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	restore := Install(tp)
	return func(ctx context.Context) error {
		restore()
		return tp.Shutdown(ctx)
	}, nil
}

// state is the installed provider's tracer; nil while tracing is off.
type state struct{ tracer trace.Tracer }

var (
	active    atomic.Pointer[state]
	installMu sync.Mutex
	// initial is OpenTelemetry's global provider before any Install. It
	// hands its tracers to the first provider ever set, for good, so
	// restoring it would not switch tracing off: noop does.
	initial = otel.GetTracerProvider()
	prop    = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
)

// Install makes tp the tracer provider of this package and of
// OpenTelemetry's globals, with the W3C trace-context and baggage
// propagator, and turns Enabled on. restore puts back what was there
// before (tracing off, when nothing was). Tests install a provider over an
// in-memory exporter this way.
func Install(tp trace.TracerProvider) (restore func()) {
	installMu.Lock()
	defer installMu.Unlock()
	prevState, prevTP, prevProp := active.Load(), otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	active.Store(&state{tracer: tp.Tracer(ScopeName)})
	var once sync.Once
	return func() {
		once.Do(func() {
			installMu.Lock()
			defer installMu.Unlock()
			active.Store(prevState)
			if prevTP == initial {
				prevTP = noop.NewTracerProvider()
			}
			otel.SetTracerProvider(prevTP)
			otel.SetTextMapPropagator(prevProp)
		})
	}
}

// Enabled reports whether a provider is installed. The worker checks it
// before it reads a header or starts a span, so that with tracing off a
// job costs an atomic load.
func Enabled() bool { return active.Load() != nil }

var noopTracer = noop.NewTracerProvider().Tracer(ScopeName)

// Tracer returns the installed provider's tracer, or one that records
// nothing.
func Tracer() trace.Tracer {
	if s := active.Load(); s != nil {
		return s.tracer
	}
	return noopTracer
}

// Propagator is the W3C trace-context (traceparent, tracestate) and
// baggage propagator the worker uses, whatever the globals hold.
func Propagator() propagation.TextMapPropagator { return prop }

// Header carries trace context in message headers: nats.Header (and any
// map[string][]string) converts to it. Keys are used as given, lower case
// as W3C writes them; NATS headers are case-sensitive.
type Header map[string][]string

var _ propagation.TextMapCarrier = Header(nil)

// Get returns the first value of key.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Keys lists the keys present.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the trace context of ctx's span into h (nothing when ctx
// carries none). h must not be nil.
func Inject(ctx context.Context, h map[string][]string) {
	Propagator().Inject(ctx, Header(h))
}

// Extract returns ctx with the remote span context found in h, if any.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	return Propagator().Extract(ctx, Header(h))
}
