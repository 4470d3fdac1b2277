package langextract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/tracing"
)

// Endpoint labels, as used in metrics.
const (
	EndpointAnalyze = "analyze_semantic"
	EndpointHealth  = "health"
)

// Request statuses reported to an Observer.
const (
	StatusSuccess = "success"
	StatusError   = "error"
	StatusTimeout = "timeout"
)

// Observer is told about every HTTP attempt the client makes.
type Observer func(endpoint, status string, d time.Duration)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	BaseURL string        // required, e.g. http://langextract:8156
	Timeout time.Duration // per attempt; 0 means 10 s
	// MaxAttempts bounds the attempts made for 503s and timeouts
	// (LANGEXTRACT_MAX_RETRIES); 0 means 3, 1 means no retry.
	MaxAttempts int
	// BackoffBase is the first retry delay, doubled each retry with full
	// jitter; 0 means 100 ms.
	BackoffBase time.Duration
	// MaxBodyBytes caps a response body; a larger one is a validation error.
	// 0 means 4 MiB.
	MaxBodyBytes int64
	// MaxURLBytes caps a request's URL (the text travels in its query
	// string, and proxies refuse long ones); a longer request is not sent
	// and fails with ErrRequest. 0 means 8 KiB.
	MaxURLBytes int
	// MaxConns and MaxIdleConns size the connection pool; 0 means 100
	// and 20.
	MaxConns, MaxIdleConns int
	Observer               Observer          // optional
	Transport              http.RoundTripper // optional; replaces the pooled transport
}

// Client calls langextract. It is safe for concurrent use.
type Client struct {
	analyzeURL string
	healthURL  string
	host       string // in spans
	cfg        Config
	http       *http.Client
}

// path is endpoint's URL path, in spans.
func (c *Client) path(endpoint string) string {
	if endpoint == EndpointHealth {
		return "/health"
	}
	return "/analyze/semantic"
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("langextract: base URL %q must be http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 100 * time.Millisecond
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.MaxURLBytes <= 0 {
		cfg.MaxURLBytes = 8 << 10
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 100
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = 20
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxConnsPerHost:     cfg.MaxConns,
			MaxIdleConns:        cfg.MaxIdleConns,
			MaxIdleConnsPerHost: cfg.MaxIdleConns,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	return &Client{
		analyzeURL: base + "/analyze/semantic",
		healthURL:  base + "/health",
		host:       u.Host,
		cfg:        cfg,
		http:       &http.Client{Transport: rt},
	}, nil
}

// Analyze asks langextract for the semantic analysis of q. Errors wrap
// one of ErrTimeout, ErrUnavailable, ErrRateLimited, ErrValidation or
// ErrRequest or ErrUnknown, or the caller's context error when ctx ends
// first. Only 503s
// and timeouts are retried, with exponential backoff and full jitter.
func (c *Client) Analyze(ctx context.Context, q analysis.Query) (*Analysis, error) {
	v := url.Values{"content": {q.Text}, "context": {q.Context}, "language": {q.Language}}
	target := c.analyzeURL + "?" + v.Encode()
	if len(target) > c.cfg.MaxURLBytes {
		return nil, fmt.Errorf("%w: the request would be %d bytes, more than the %d allowed (LANGEXTRACT_MAX_URL_BYTES)", ErrRequest, len(target), c.cfg.MaxURLBytes)
	}
	var lastErr error
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
		}
		a, err := c.analyzeOnce(ctx, target)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, errRetryable503) {
			return nil, err
		}
		lastErr = err
	}
	if errors.Is(lastErr, errRetryable503) {
		return nil, fmt.Errorf("%w: 503 after %d attempts", ErrUnavailable, c.cfg.MaxAttempts)
	}
	return nil, fmt.Errorf("%w after %d attempts", lastErr, c.cfg.MaxAttempts)
}

var errRetryable503 = fmt.Errorf("%w: 503 service unavailable", ErrUnavailable)

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << (attempt - 1)
	return d/2 + rand.N(d/2+1) // jitter keeps retrying workers from moving in step
}

func (c *Client) analyzeOnce(ctx context.Context, target string) (*Analysis, error) {
	body, err := c.do(ctx, http.MethodPost, target, EndpointAnalyze)
	if err != nil {
		return nil, err
	}
	return Decode(body)
}

// do runs one attempt and classifies its failure. The status reported to
// the observer is "timeout" for timeouts, "error" for any failure (including
// an invalid body, found later by the caller only for analyze), "success"
// otherwise.
func (c *Client) do(ctx context.Context, method, target, endpoint string) ([]byte, error) {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var span trace.Span
	if tracing.Enabled() && trace.SpanContextFromContext(ctx).IsValid() {
		// Within a traced job only: health probes and cache warming start
		// no trace of their own.
		actx, span = tracing.Tracer().Start(actx, tracing.SpanLangextract, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.ServerAddress(c.host), semconv.URLPath(c.path(endpoint))))
	}
	body, err := c.roundTrip(actx, method, target)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("langextract: %w", ctx.Err()) // the caller gave up: not the service's failure
	} else if err != nil && actx.Err() != nil {
		err = fmt.Errorf("%w: no answer within %s", ErrTimeout, c.cfg.Timeout)
	}
	if span != nil {
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(FallbackReason(err)))
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if obs := c.cfg.Observer; obs != nil {
		status := StatusSuccess
		switch {
		case errors.Is(err, ErrTimeout):
			status = StatusTimeout
		case err != nil:
			status = StatusError
		}
		obs(endpoint, status, time.Since(start))
	}
	return body, err
}

func (c *Client) roundTrip(ctx context.Context, method, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnknown, err)
	}
	traced := tracing.Enabled()
	if traced {
		// langextract continues the trace from the request's span (none
		// outside a traced job).
		tracing.Inject(ctx, req.Header)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			return nil, fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if traced {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		}
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		drain(resp.Body)
		return nil, errRetryable503
	case resp.StatusCode == http.StatusTooManyRequests:
		drain(resp.Body)
		return nil, fmt.Errorf("%w: 429 too many requests", ErrRateLimited)
	case resp.StatusCode == http.StatusRequestTimeout:
		drain(resp.Body)
		return nil, fmt.Errorf("%w: HTTP 408", ErrTimeout)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		drain(resp.Body)
		return nil, fmt.Errorf("%w: HTTP %d", ErrRequest, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		drain(resp.Body)
		return nil, fmt.Errorf("%w: HTTP %d", ErrUnknown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: reading body: %v", ErrUnavailable, err)
	}
	if int64(len(body)) > c.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrValidation, c.cfg.MaxBodyBytes)
	}
	return body, nil
}

// drain reads a little of an error body so the connection can be reused.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }

// Health is the answer of GET /health.
type Health struct {
	Status string `json:"status"` // healthy, degraded or unhealthy
}

// Health asks the service for its health; a transport failure or an answer
// that is not the expected JSON is an error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	body, err := c.do(ctx, http.MethodGet, c.healthURL, EndpointHealth)
	if err != nil {
		return Health{}, err
	}
	var h Health
	if err := json.Unmarshal(body, &h); err != nil || h.Status == "" {
		return Health{}, fmt.Errorf("%w: health answer is not {\"status\": ...}", ErrValidation)
	}
	return h, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("langextract: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
