// Package langextractd serves the built-in analyzer over langextract's HTTP
// API (docs/scoring.md#the-langextract-call), with injectable latency and
// faults, for tests, benchmarks and docker-compose.
package langextractd

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hybridscore/hybridscore/internal/analyzer"
)

// Faults are injected into /analyze/semantic answers. Rates are
// probabilities in [0, 1], drawn independently per request in the order
// listed; the zero value injects nothing.
type Faults struct {
	Latency      time.Duration // added before every answer
	Hang         float64       // never answer (until the client gives up)
	Rate503      float64
	Rate500      float64
	Rate429      float64
	Malformed    float64 // a 200 whose body is not JSON
	MissingField float64 // a 200 lacking "concepts"
	OutOfRange   float64 // a 200 with semantic_density 7
	HugeBody     int64   // when > 0, every 200 is padded to this many bytes
}

// Server is an http.Handler answering like langextract. Safe for concurrent
// use; SetFaults may be called while serving.
type Server struct {
	faults atomic.Pointer[Faults]
	calls  atomic.Int64
	mu     sync.Mutex
	byText map[string]int
	hangs  chan struct{}
}

// New returns a Server with faults f.
func New(f Faults) *Server {
	s := &Server{byText: map[string]int{}, hangs: make(chan struct{})}
	s.faults.Store(&f)
	return s
}

// SetFaults replaces the faults injected from now on.
func (s *Server) SetFaults(f Faults) { s.faults.Store(&f) }

// Calls returns how many analyze requests arrived.
func (s *Server) Calls() int64 { return s.calls.Load() }

// CallsFor returns how many analyze requests asked about content.
func (s *Server) CallsFor(content string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byText[content]
}

// Distinct returns how many distinct contents were asked about.
func (s *Server) Distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byText)
}

// Close releases requests hanging on a Hang fault.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.hangs:
	default:
		close(s.hangs)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/health" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status": "healthy", "timestamp": time.Now().UTC().Format(time.RFC3339),
			"version": "builtin", "components": map[string]string{"language_extractor": "healthy"},
		})
	case r.URL.Path == "/analyze/semantic" && r.Method == http.MethodPost:
		s.analyze(w, r)
	default:
		http.Error(w, `{"detail":"not found"}`, http.StatusNotFound)
	}
}

func (s *Server) analyze(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	q := r.URL.Query()
	content := q.Get("content")
	s.mu.Lock()
	s.byText[content]++
	s.mu.Unlock()
	f := *s.faults.Load()
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		}
	}
	roll := func(p float64) bool { return p > 0 && rand.Float64() < p }
	switch {
	case roll(f.Hang):
		select {
		case <-r.Context().Done():
		case <-s.hangs:
		}
		return
	case roll(f.Rate503):
		http.Error(w, `{"detail":"overloaded"}`, http.StatusServiceUnavailable)
		return
	case roll(f.Rate500):
		http.Error(w, `{"detail":"internal error"}`, http.StatusInternalServerError)
		return
	case roll(f.Rate429):
		http.Error(w, `{"detail":"slow down"}`, http.StatusTooManyRequests)
		return
	case roll(f.Malformed):
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`<html>this is not json`))
		return
	}
	if content == "" {
		http.Error(w, `{"detail":"content is required"}`, http.StatusUnprocessableEntity)
		return
	}
	a := analyzer.Analyze(content, q.Get("language"), q.Get("context"))
	body, _ := json.Marshal(a)
	switch {
	case roll(f.MissingField):
		body = []byte(strings.Replace(string(body), `"concepts":`, `"not_concepts":`, 1))
	case roll(f.OutOfRange):
		body = []byte(strings.Replace(string(body), `"semantic_density":`, `"semantic_density":7,"x":`, 1))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	if pad := f.HugeBody - int64(len(body)); pad > 0 {
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for pad > 0 {
			n := min(pad, int64(len(chunk)))
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			pad -= n
		}
	}
}
