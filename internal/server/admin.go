package server

import (
	"github.com/hybridscore/hybridscore/internal/analysis"
	"sync"

	"crypto/subtle"
	"encoding/json"
	"errors"
	"golang.org/x/time/rate"
	"io"
	"net/http"
	"strings"

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
	// AuthFailed is told of each request with a missing or wrong token
	// (a metric); nil: none.
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
	mux.HandleFunc("POST /admin/cache/warm", a.guard(a.warm))
}

func (a *Admin) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.Token == "" {
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

// warm accepts {"texts": [...], "language": "en", "context": "..."} or a
// bare JSON array of texts.
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
	req := struct {
		Texts    []string `json:"texts"`
		Language string   `json:"language"`
		Context  string   `json:"context"`
	}{}
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		err = json.Unmarshal(body, &req.Texts)
	} else {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"texts\": [...]} or a JSON array of strings: " + err.Error()})
		return
	}
	if len(req.Texts) == 0 || len(req.Texts) > MaxWarmTexts {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "texts must hold 1 to 10000 strings"})
		return
	}
	// Jobs default language and context the same way: warm under the keys
	// jobs will look up.
	n, err := a.Cache.Warm(r.Context(), analysis.Texts(req.Texts, analysis.Query{Language: req.Language, Context: req.Context}))
	resp := map[string]any{"requested": len(req.Texts), "cached": n}
	if err != nil {
		resp["errors"] = err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
}
