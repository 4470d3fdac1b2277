package langextract_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/hybridscore/hybridscore/internal/similarity"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/breaker"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/source"
)

func newClient(t *testing.T, url string, timeout time.Duration, obs langextract.Observer) *langextract.Client {
	t.Helper()
	c, err := langextract.New(langextract.Config{BaseURL: url, Timeout: timeout, MaxAttempts: 3, BackoffBase: 5 * time.Millisecond, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flaky answers 503 for the first n requests, then serves the analyzer.
type flaky struct {
	n     int64
	calls atomic.Int64
	next  http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.calls.Add(1) <= f.n {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

func TestFailureModes(t *testing.T) {
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return "http://" + addr
	}()
	tests := []struct {
		name      string
		faults    langextractd.Faults
		handler   http.Handler // instead of a fault server
		url       string       // instead of any server
		reason    string       // "" means success
		attempts  int64        // requests the server must see (0: don't check)
		countsFor bool         // counted toward opening the breaker
		// timeout per attempt; 0 means 100 ms
		timeout time.Duration
	}{
		{name: "ok", reason: "", attempts: 1},
		{name: "timeout", faults: langextractd.Faults{Latency: 300 * time.Millisecond}, reason: "timeout", attempts: 3, countsFor: true},
		{name: "hang", faults: langextractd.Faults{Hang: 1}, reason: "timeout", attempts: 3, countsFor: true},
		{name: "503 then success", handler: &flaky{n: 2, next: langextractd.New(langextractd.Faults{})}, reason: "", attempts: 3},
		{name: "503 forever", faults: langextractd.Faults{Rate503: 1}, reason: "unavailable", attempts: 3, countsFor: true},
		{name: "429", faults: langextractd.Faults{Rate429: 1}, reason: "rate_limited", attempts: 1},
		{name: "500", faults: langextractd.Faults{Rate500: 1}, reason: "unknown", attempts: 1, countsFor: true},
		{name: "414 from a proxy", handler: status(http.StatusRequestURITooLong), reason: "validation_error"},
		{name: "400", handler: status(http.StatusBadRequest), reason: "validation_error"},
		{name: "408", handler: status(http.StatusRequestTimeout), reason: "timeout", countsFor: true},
		{name: "connection refused", url: refused, reason: "unavailable", countsFor: true},
		{name: "200 not JSON", faults: langextractd.Faults{Malformed: 1}, reason: "validation_error", attempts: 1},
		{name: "200 missing field", faults: langextractd.Faults{MissingField: 1}, reason: "validation_error", attempts: 1},
		{name: "number out of range", faults: langextractd.Faults{OutOfRange: 1}, reason: "validation_error", attempts: 1},
		// The size limit, not the clock, must end it: on a loaded machine
		// 50 MB may not stream within 100 ms.
		{name: "50 MB body", faults: langextractd.Faults{HugeBody: 50 << 20}, reason: "validation_error", attempts: 1, timeout: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			var fs *langextractd.Server
			var counter interface{ Calls() int64 }
			if url == "" {
				h := tt.handler
				if h == nil {
					fs = langextractd.New(tt.faults)
					h = fs
					counter = fs
				} else if f, ok := h.(*flaky); ok {
					counter = callsFunc(f.calls.Load)
				}
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)
				if fs != nil {
					t.Cleanup(fs.Close) // release hung handlers before the server closes
				}
				url = srv.URL
			}
			var statuses []string
			obs := func(endpoint, status string, _ time.Duration) { statuses = append(statuses, status) }
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 100 * time.Millisecond
			}
			c := newClient(t, url, timeout, obs)
			br := source.NewBreaker(1, time.Minute, nil)
			a, err := source.Guard(br, c).Analyze(context.Background(), analysis.Of("Implement OAuth2 authentication with JWT tokens"))
			if got := langextract.FallbackReason(err); got != tt.reason {
				t.Fatalf("reason %q (err %v), want %q", got, err, tt.reason)
			}
			if tt.reason == "" {
				want := analyzer.Analyze("Implement OAuth2 authentication with JWT tokens", "en", "pattern_matching")
				if strings.Join(a.Concepts, ",") != strings.Join(want.Concepts, ",") {
					t.Fatalf("concepts %v, want %v", a.Concepts, want.Concepts)
				}
			}
			if counter != nil && tt.attempts > 0 && counter.Calls() != tt.attempts {
				t.Errorf("server saw %d requests, want %d", counter.Calls(), tt.attempts)
			}
			// Threshold 1: one counted failure opens the breaker.
			wantState := breaker.Closed
			if tt.countsFor {
				wantState = breaker.Open
			}
			if br.State() != wantState {
				t.Errorf("breaker %s, want %s", br.State(), wantState)
			}
			if len(statuses) == 0 {
				t.Errorf("observer saw no request")
			}
		})
	}
}

// status answers every request with code.
type status int

func (s status) ServeHTTP(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(s)) }

// A text whose request would pass the URL limit is not sent, degrades as
// validation_error and leaves the breaker closed.
func TestLongRequestIsNotSent(t *testing.T) {
	fs := langextractd.New(langextractd.Faults{})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, time.Second, nil)
	br := source.NewBreaker(1, time.Minute, nil)
	long := strings.Repeat("é", 3000) // 6 KB of UTF-8, 18 KB escaped in a query string
	for range 5 {
		_, err := source.Guard(br, c).Analyze(context.Background(), analysis.Of(long))
		if !errors.Is(err, langextract.ErrRequest) || langextract.FallbackReason(err) != "validation_error" {
			t.Fatalf("err %v", err)
		}
	}
	if fs.Calls() != 0 || br.State() != breaker.Closed {
		t.Fatalf("%d requests sent, breaker %s", fs.Calls(), br.State())
	}
}

type callsFunc func() int64

func (f callsFunc) Calls() int64 { return f() }

func TestBreakerOpensHalfOpensAndResets(t *testing.T) {
	fs := langextractd.New(langextractd.Faults{Rate500: 1})
	srv := httptest.NewServer(fs)
	defer srv.Close()
	c := newClient(t, srv.URL, time.Second, nil)
	var transitions atomic.Int32
	br := source.NewBreaker(3, 200*time.Millisecond, func(from, to breaker.State) { transitions.Add(1) })
	analyze := source.Guard(br, c).Analyze
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := analyze(ctx, analysis.Query{Text: "x", Language: "en", Context: "c"}); langextract.FallbackReason(err) != "unknown" {
			t.Fatalf("call %d: %v", i, err)
		}
		if i < 2 && br.State() != breaker.Closed {
			t.Fatalf("opened after %d failures", i+1)
		}
	}
	if br.State() != breaker.Open {
		t.Fatalf("state %s after 3 failures, want open", br.State())
	}
	before := fs.Calls()
	if _, err := analyze(ctx, analysis.Query{Text: "x", Language: "en", Context: "c"}); !errors.Is(err, langextract.ErrCircuitOpen) || langextract.FallbackReason(err) != "circuit_breaker" {
		t.Fatalf("open breaker answered %v", err)
	}
	if fs.Calls() != before {
		t.Fatal("open breaker let a call through")
	}
	// Excluded errors neither trip nor reset: cancellation, rate limits, bad bodies.
	br.Reset()
	if br.State() != breaker.Closed {
		t.Fatal("Reset did not close the breaker")
	}
	fs.SetFaults(langextractd.Faults{Rate429: 1})
	for i := 0; i < 5; i++ {
		_, _ = analyze(ctx, analysis.Query{Text: "x", Language: "en", Context: "c"})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for i := 0; i < 5; i++ {
		_, _ = analyze(cctx, analysis.Query{Text: "x", Language: "en", Context: "c"})
	}
	if br.State() != breaker.Closed || br.ConsecutiveFailures() != 0 {
		t.Fatalf("excluded errors counted: state %s, failures %d", br.State(), br.ConsecutiveFailures())
	}
	// Open it again, wait out the timeout, and let the half-open probe succeed.
	fs.SetFaults(langextractd.Faults{Rate503: 1})
	for br.State() != breaker.Open {
		_, _ = analyze(ctx, analysis.Query{Text: "x", Language: "en", Context: "c"})
	}
	fs.SetFaults(langextractd.Faults{})
	eventually.True(t, 5*time.Second, func() bool { return br.State() == breaker.HalfOpen }, "breaker half-open")
	if _, err := analyze(ctx, analysis.Query{Text: "x", Language: "en", Context: "c"}); err != nil {
		t.Fatalf("half-open probe: %v", err)
	}
	if br.State() != breaker.Closed {
		t.Fatalf("state %s after a successful probe, want closed", br.State())
	}
	if transitions.Load() < 4 {
		t.Errorf("%d transitions reported", transitions.Load())
	}
}

func TestContextCancellationHonoured(t *testing.T) {
	fs := langextractd.New(langextractd.Faults{Hang: 1})
	srv := httptest.NewServer(fs)
	defer srv.Close()
	defer fs.Close()
	c := newClient(t, srv.URL, 10*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Analyze(ctx, analysis.Query{Text: "x", Language: "en", Context: "c"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if langextract.CountsAsFailure(err) {
		t.Fatal("the caller's own deadline counted as the service's failure")
	}
}

func TestHealth(t *testing.T) {
	srv := httptest.NewServer(langextractd.New(langextractd.Faults{}))
	defer srv.Close()
	h, err := newClient(t, srv.URL, time.Second, nil).Health(context.Background())
	if err != nil || h.Status != "healthy" {
		t.Fatalf("Health = %+v, %v", h, err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer bad.Close()
	if _, err := newClient(t, bad.URL, time.Second, nil).Health(context.Background()); !errors.Is(err, langextract.ErrValidation) {
		t.Fatalf("Health on a non-JSON answer = %v", err)
	}
	if _, err := langextract.New(langextract.Config{BaseURL: "ftp://x"}); err == nil {
		t.Fatal("New accepted an ftp URL")
	}
}

func TestDecodeStrict(t *testing.T) {
	good, _ := json.Marshal(analyzer.Analyze("Build a REST API that stores users", "en", "c"))
	if _, err := langextract.Decode(good); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"array":               `[]`,
		"null":                `null`,
		"truncated":           string(good[:len(good)/2]),
		"concepts number":     strings.Replace(string(good), `"concepts":[`, `"concepts":[1,`, 1),
		"density string":      strings.Replace(string(good), `"semantic_density":`, `"semantic_density":"0.5","y":`, 1),
		"null themes":         strings.Replace(string(good), `"themes":[`, `"themes":null,"z":[`, 1),
		"pattern_type 5":      `{"semantic_patterns":[{"pattern_id":"a","pattern_type":5,"confidence_score":0.5}],"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{},"topic_weights":{}}`,
		"type true":           `{"semantic_patterns":[{"pattern_id":"a","type":true,"confidence_score":0.5}],"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{},"topic_weights":{}}`,
		"relationship_type 1": `{"semantic_patterns":[],"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{"relationships":[{"relationship_type":1}]},"topic_weights":{}}`,
		"confidence 2":        `{"semantic_patterns":[{"pattern_id":"a","pattern_type":"T","confidence_score":2}],"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{},"topic_weights":{}}`,
		"topic weight -1":     `{"semantic_patterns":[],"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{},"topic_weights":{"a":-1}}`,
		"relationships 1":     `{"semantic_patterns":[],"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{"relationships":1},"topic_weights":{}}`,
		"coherence 1e999":     strings.Replace(string(good), `"conceptual_coherence":`, `"conceptual_coherence":1e999,"w":`, 1),
	} {
		if _, err := langextract.Decode([]byte(body)); !errors.Is(err, langextract.ErrValidation) {
			t.Errorf("%s: Decode = %v, want ErrValidation", name, err)
		}
	}
}

// Lenient where langextract's other consumers are: pattern_type, else
// type; an entry with neither is skipped; a relationship typed by type or
// relationship_type.
func TestDecodeLenient(t *testing.T) {
	const rest = `"concepts":[],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":0,"conceptual_coherence":0,"thematic_consistency":0,"topic_weights":{}`
	a, err := langextract.Decode([]byte(`{"semantic_patterns":[
		{"pattern_id":"a","pattern_type":"Auth","confidence_score":0.5},
		{"pattern_id":"b","type":"Deploy","confidence_score":0.4},
		{"pattern_id":"c","confidence_score":0.3},
		{"description":"no type at all"}],
		"semantic_context":{"relationships":[{"type":"uses"},{"relationship_type":"depends_on"},{}]},` + rest + `}`))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range a.SemanticPatterns {
		types = append(types, p.PatternType)
	}
	if strings.Join(types, ",") != "Auth,Deploy" {
		t.Fatalf("pattern types %v", types)
	}
	f := a.Features()
	var b similarity.Builder
	b.Add(similarity.Structure, "Auth")
	b.Add(similarity.Structure, "Deploy")
	b.Add(similarity.Relationship, "uses")
	b.Add(similarity.Relationship, "depends_on")
	if c, _ := similarity.Compare(f, b.Build(), &similarity.DefaultWeights); c[3] != 1 || c[4] != 1 {
		t.Fatalf("structure and relationship components %v, want both 1", c)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(analyzer.Analyze("Implement OAuth2 authentication with JWT tokens. It uses Redis.", "en", "c"))
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"semantic_patterns":[{"pattern_id":"a","pattern_type":"T","confidence_score":0.5}],"concepts":["a"],"themes":[],"domain_indicators":[],"primary_topics":[],"semantic_density":1,"conceptual_coherence":0,"thematic_consistency":0,"semantic_context":{"relationships":[{"relationship_type":"uses"}],"relationship_chains":[{"types":["a","b"]}]},"topic_weights":{"a":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := langextract.Decode(body)
		if err != nil {
			if !errors.Is(err, langextract.ErrValidation) {
				t.Fatalf("error outside the taxonomy: %v", err)
			}
			return
		}
		for _, v := range []float64{a.SemanticDensity, a.ConceptualCoherence, a.ThematicConsistency} {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("metric %v out of range", v)
			}
		}
		for _, p := range a.SemanticPatterns {
			if !(p.ConfidenceScore >= 0 && p.ConfidenceScore <= 1) {
				t.Fatalf("confidence %v out of range", p.ConfidenceScore)
			}
		}
		_ = a.Features()
	})
}
