package server

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/semcache"
)

// MaxWarmBody bounds a POST /admin/cache/warm body.
const MaxWarmBody = 8 << 20

// MaxWarmTexts bounds the texts of one warm request.
const MaxWarmTexts = 10000

// Admin serves the admin endpoints behind a bearer token. With no token
// configured every admin request is refused.
type Admin struct {
	Token        string
	Cache        *semcache.Cache
	ResetBreaker func() bool
	BreakerState func() string
	// AuthFailed is told of each refused request: a missing or wrong
	// token, or any request while no token is configured (a metric); nil:
	// none.
	AuthFailed func()

	failures *rate.Limiter // lazily: 5 failed attempts a second, bursts of 10
	once     sync.Once
}

// tooManyFailures answers when wrong tokens come faster than a person
// types them: guessing is slowed to five attempts a second.
const tooManyFailures = "too many failed authentications: slow down"

// Register adds the admin routes to mux.
func (a *Admin) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/circuit-breaker/reset", a.guard(func(w http.ResponseWriter, r *http.Request) {
		if !a.ResetBreaker() {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "no circuit breaker: the built-in analyzer is in use"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset", "state": a.BreakerState()})
	}))
	mux.HandleFunc("GET /admin/cache", a.guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Cache.Metrics())
	}))
	mux.HandleFunc("GET /admin/cache/report", a.guard(func(w http.ResponseWriter, r *http.Request) {
		rep := a.Cache.Report()
		if r.URL.Query().Get("format") == "text" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_ = rep.WriteText(w)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	}))
	// The export is a warm file: POST it back to /admin/cache/warm, or give
	// it to a worker as SEMANTIC_CACHE_WARM_FILE.
	mux.HandleFunc("GET /admin/cache/export", a.guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Cache.Export())
	}))
	mux.HandleFunc("POST /admin/cache/warm", a.guard(a.warm))
}

func (a *Admin) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.Token == "" {
			// A refusal like a wrong token's: someone tried the admin
			// endpoints of a worker that serves none.
			if a.AuthFailed != nil {
				a.AuthFailed()
			}
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "admin endpoints are disabled: set ADMIN_TOKEN"})
			return
		}
		a.once.Do(func() { a.failures = rate.NewLimiter(5, 10) })
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
			if a.AuthFailed != nil {
				a.AuthFailed()
			}
			if !a.failures.Allow() {
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": tooManyFailures})
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="hybridscore"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		h(w, r)
	}
}

// warm accepts what ParseWarm reads.
func (a *Admin) warm(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWarmBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body larger than 8 MiB"})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	qs, err := ParseWarm(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if len(qs) == 0 || len(qs) > MaxWarmTexts {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "texts must hold 1 to 10000 strings"})
		return
	}
	n, err := a.Cache.Warm(r.Context(), qs)
	resp := map[string]any{"requested": len(qs), "cached": n}
	if err != nil {
		resp["errors"] = err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
}

// errWarmShape names the shapes ParseWarm reads.
var errWarmShape = errors.New(`want {"texts": [...], "language": ..., "context": ...}, a JSON array of strings, or a JSON array of {"text", "language", "context"} (GET /admin/cache/export)`)

// ParseWarm reads texts to warm the cache with: {"texts": [...],
// "language": ..., "context": ...}, a JSON array of strings, or the JSON
// array of queries GET /admin/cache/export writes. Language and context
// default as a job's do, so texts are warmed under the keys jobs look up.
func ParseWarm(body []byte) ([]analysis.Query, error) {
	body = bytes.TrimSpace(body)
	if bytes.HasPrefix(body, []byte("{")) {
		var req struct {
			Texts    []string `json:"texts"`
			Language string   `json:"language"`
			Context  string   `json:"context"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("%w: %v", errWarmShape, err)
		}
		return analysis.Texts(req.Texts, analysis.Query{Language: req.Language, Context: req.Context}), nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, fmt.Errorf("%w: %v", errWarmShape, err)
	}
	qs := make([]analysis.Query, len(items))
	for i, it := range items {
		var err error
		if bytes.HasPrefix(it, []byte(`"`)) {
			err = json.Unmarshal(it, &qs[i].Text)
		} else {
			err = json.Unmarshal(it, &qs[i])
		}
		if err != nil {
			return nil, fmt.Errorf("%w: item %d: %v", errWarmShape, i, err)
		}
		qs[i] = qs[i].WithDefaults()
	}
	return qs, nil
}
