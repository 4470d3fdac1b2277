// Package console is hybridscore's operator console: a web application that
// talks only to NATS (JetStream for the streams and consumers, the service
// API for the workers) and shows the job classes' backlogs and rates, the
// dead letters, a job by id and every worker; a signed-in operator replays
// and deletes dead letters and resets a worker's breaker. Pages are rendered
// on the server; a few lines of JavaScript refresh the live figures.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/pkg/job"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config configures a console.
type Config struct {
	// NC is the connection to NATS, with the operator's permissions.
	NC *nats.Conn
	// Token is the admin token that signs an operator in; empty: the
	// console is read-only.
	Token string
	// Log receives sign-ins, refusals and mutations (never a secret); nil:
	// none.
	Log *zap.Logger
	// PageSize is the dead letters on one page; 0 means 50.
	PageSize int
	// TallyEvery is how often the dead-letter counts catch up; 0 means 2 s.
	TallyEvery time.Duration
}

// Console serves the console's pages.
type Console struct {
	cfg      Config
	js       jetstream.JetStream
	sessions *sessions
	tally    *tally
	outcomes outcomes
	pages    map[string]*template.Template

	rateMu    sync.Mutex
	last      []reading // each counter's last reading, rates are measured from
	ratesAt   time.Time // when lastRates were measured
	lastRates []float64

	seen seen // workers that answered lately, to tell one gone
}

// New returns a console on cfg.NC. Run keeps its dead-letter counts
// current; Handler serves it.
func New(cfg Config) (*Console, error) {
	if cfg.NC == nil {
		return nil, errors.New("console: no NATS connection")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.TallyEvery <= 0 {
		cfg.TallyEvery = 2 * time.Second
	}
	js, err := jetstream.New(cfg.NC)
	if err != nil {
		return nil, fmt.Errorf("console: JetStream: %w", err)
	}
	c := &Console{cfg: cfg, js: js, sessions: newSessions(), tally: newTally(js)}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	return c, nil
}

// Run keeps the dead-letter counts current until ctx ends.
func (c *Console) Run(ctx context.Context) {
	c.tally.run(ctx, c.cfg.TallyEvery)
}

// Counts returns the dead letters by reason and lane and their total;
// ready is false until the stream has been read once.
func (c *Console) Counts() (counts []ReasonCount, total int, ready bool, err error) {
	return c.tally.counts()
}

var funcs = template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"rate": func(f float64) string {
		if f < 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f/s", f)
	},
	"age": func(d time.Duration) string {
		if d <= 0 {
			return "–"
		}
		return d.Round(time.Second).String()
	},
	"secs": func(s float64) string { return (time.Duration(s) * time.Second).String() },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	// refusedAgain tells whether a letter of this reason was refused for
	// its payload: replayed unchanged, it is refused again unless what
	// refused it changed.
	"refusedAgain": refusedAgain,
}

// parsePages builds each page from the layout and its own template; the
// partials (refreshed by script) are pages without the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// view is what every page is rendered with.
type view struct {
	Title         string
	Nav           string
	SignedIn      bool
	SignInEnabled bool
	CSRF          string
	// Here is where signing in returns to: this page when it was a GET,
	// else the overview.
	Here string
	Data any
}

// titles names each page in the browser's tab.
var titles = map[string]string{"overview": "Overview", "deadletters": "Dead letters", "letter": "Dead letter",
	"job": "Find a job", "cache": "Cache report", "login": "Sign in"}

type message struct {
	Title, Text string
	Back        string
	// SignIn offers signing in, back to the page the action came from.
	SignIn bool
}

func (c *Console) page(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	c.render(w, r, code, name, "layout", data)
}

// render executes template tmpl of page name; "layout" is a whole page,
// anything else a fragment of one.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name, tmpl string, data any) {
	_, sess, ok := c.sessions.get(r)
	v := view{Nav: strings.TrimSuffix(name, ".html"), SignedIn: ok, SignInEnabled: c.cfg.Token != "", CSRF: sess.csrf, Here: "/", Data: data}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/partial/"):
		// A fragment of the overview: its forms return to the overview.
	case r.Method == http.MethodGet && r.URL.Path != "/login":
		v.Here = r.URL.RequestURI()
	case localPath(r.FormValue("next")):
		v.Here = r.FormValue("next")
	}
	if m, isMsg := data.(message); isMsg {
		v.Title = m.Title
	} else {
		v.Title = titles[v.Nav]
	}
	t := c.pages[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, tmpl, v); err != nil {
		c.cfg.Log.Error("render", zap.String("page", name), zap.Error(err))
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (c *Console) log(msg string, kv ...any) { c.cfg.Log.Sugar().Infow(msg, kv...) }

// errDisconnected: the console's NATS connection is down. A request would
// wait out its timeout meanwhile (nats.go holds it for the reconnect), so
// the pages ask nothing and say so at once.
var errDisconnected = errors.New("NATS is not connected (the console keeps trying to reconnect)")

func (c *Console) connected() error {
	if !c.cfg.NC.IsConnected() {
		return errDisconnected
	}
	return nil
}

// Handler returns the console's routes.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !c.cfg.NC.IsConnected() {
			http.Error(w, "NATS disconnected", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /{$}", c.overviewPage)
	mux.HandleFunc("GET /partial/overview", c.overviewPartial)
	mux.HandleFunc("GET /deadletters", c.lettersPage)
	mux.HandleFunc("GET /deadletters/{seq}", c.letterPage)
	mux.HandleFunc("POST /deadletters/{seq}/replay", c.mutation(c.replayOne))
	mux.HandleFunc("POST /deadletters/{seq}/delete", c.mutation(c.deleteOne))
	mux.HandleFunc("POST /deadletters/replay", c.mutation(c.replaySet))
	mux.HandleFunc("GET /jobs", c.jobPage)
	mux.HandleFunc("GET /done/{id}", c.outcomePage)
	mux.HandleFunc("POST /workers/{id}/breaker-reset", c.mutation(c.breakerReset))
	mux.HandleFunc("GET /workers/{id}/cache-report", c.signedIn(c.cacheReport))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		c.page(w, r, http.StatusOK, "login.html", message{Title: "Sign in"})
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		c.page(w, r, http.StatusNotFound, "message.html", message{Title: "No such page",
			Text: "The console has no page " + r.URL.Path + ".", Back: "/"})
	})
	mux.HandleFunc("POST /login", c.signIn)
	mux.HandleFunc("POST /logout", c.signOut)
	return secure(mux)
}

// secure sets the headers every answer carries: scripts and styles only
// from the console itself, no framing, no referrer.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// refusedAgain tells whether a letter of this reason was refused for its
// payload, which a replay publishes unchanged.
func refusedAgain(reason string) bool {
	return job.Rejected(reason) || reason == consumer.ReasonConflict
}
