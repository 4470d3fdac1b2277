// Command worker runs the hybridscore consumer pool (the default command),
// prints a running worker's health report (worker health), or serves the
// built-in analyzer over langextract's HTTP API (worker langextract-server).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/server"
)

type cli struct {
	Run         runCmd           `cmd:"" default:"withargs" help:"Consume and score jobs (default)."`
	Health      healthCmd        `cmd:"" help:"Print the System Health Report of a running worker; exit 1 unless healthy."`
	Langextract langextractCmd   `cmd:"" name:"langextract-server" help:"Serve the built-in analyzer over langextract's HTTP API, with injectable faults."`
	Version     kong.VersionFlag `help:"Print the version."`
}

type runCmd struct {
	config.Config `embed:""`
}

func (r *runCmd) Run() error {
	// The worker's live heap is small (a cache of features, the held jobs)
	// and it allocates per job: collecting at 4× the live heap instead of
	// 2× costs a few MB and saves CPU the broker shares. GOGC, when set,
	// rules.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// At 4× the garbage of a burst of large jobs would pile up to several
	// times WORKER_MAX_HELD_BYTES: a soft limit sized from what the worker
	// holds (jobs, cache) makes the collector work harder near it instead.
	// GOMEMLIMIT, when set, rules (the runtime read it).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(r.MemoryLimit())
	}
	log, err := server.NewLogger(r.LogLevel, r.LogFormat, zapcore.Lock(os.Stderr))
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := server.New(ctx, r.Config, log)
	if err != nil {
		return err
	}
	log.Info("worker starting", zap.String("version", server.Version), zap.String("nats", s.NATSURL()),
		zap.Int("concurrency", r.WorkerConcurrency))
	return s.Run(ctx)
}

type healthCmd struct {
	// --url is the name it had before; the publisher's commands say --worker-url too.
	URL        string        `name:"worker-url" aliases:"url" env:"HYBRIDSCORE_WORKER_URL" help:"Base URL of the worker's HTTP endpoints (default: HTTP_ADDR's port on this host, else http://127.0.0.1:8053)."`
	DegradedOK bool          `help:"Exit 0 when degraded too (for container health checks)."`
	JSON       bool          `help:"Print the JSON report instead of the text one."`
	Timeout    time.Duration `default:"5s" help:"Request timeout."`
}

func (h *healthCmd) Run() error {
	if h.URL == "" {
		h.URL = localURL(os.Getenv("HTTP_ADDR"))
	}
	client := &http.Client{Timeout: h.Timeout}
	resp, err := client.Get(strings.TrimRight(h.URL, "/") + "/health")
	if err != nil {
		fmt.Println("=== System Health Report ===\nWORKER: ❌ UNREACHABLE\n\nOVERALL: ❌ UNHEALTHY")
		return fmt.Errorf("worker at %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var rep health.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("worker at %s answered %d without a health report: %w", h.URL, resp.StatusCode, err)
	}
	if h.JSON {
		os.Stdout.Write(body)
	} else {
		fmt.Print(health.Text(rep))
	}
	if rep.Status == health.Healthy || (h.DegradedOK && rep.Status == health.Degraded) {
		return nil
	}
	return errExit
}

var errExit = errors.New("not healthy")

// localURL is the URL of a worker on this host that listens on addr (its
// HTTP_ADDR): a worker started with HTTP_ADDR=:8501 is asked on that port
// by a health check given the same environment, not on the default one.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if addr == "" || err != nil || port == "" || port == "0" {
		return "http://127.0.0.1:8053"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// helpWithSettings is kong's help, except that the top level's (worker
// --help) goes on with the settings of the default command, run: what a
// newcomer asking the worker for help is after.
func helpWithSettings(options kong.HelpOptions, ctx *kong.Context) error {
	if err := kong.DefaultHelpPrinter(options, ctx); err != nil || ctx.Selected() != nil {
		return err
	}
	run, err := kong.Trace(ctx.Kong, []string{"run"})
	if err != nil {
		return err
	}
	fmt.Fprintln(ctx.Stdout, "\nSettings of run, the default command (each flag is also the environment variable shown):")
	return kong.DefaultHelpPrinter(options, run)
}

type langextractCmd struct {
	Addr         string        `default:":8156" env:"LANGEXTRACT_ADDR" help:"Listen address."`
	Latency      time.Duration `env:"FAULT_LATENCY" help:"Delay added to every analysis."`
	Hang         float64       `env:"FAULT_HANG" help:"Share of requests that never answer."`
	Rate503      float64       `name:"rate-503" env:"FAULT_RATE_503" help:"Share of 503 answers."`
	Rate500      float64       `name:"rate-500" env:"FAULT_RATE_500" help:"Share of 500 answers."`
	Rate429      float64       `name:"rate-429" env:"FAULT_RATE_429" help:"Share of 429 answers."`
	Malformed    float64       `env:"FAULT_MALFORMED" help:"Share of 200 answers that are not JSON."`
	MissingField float64       `env:"FAULT_MISSING_FIELD" help:"Share of 200 answers lacking a field."`
}

func (l *langextractCmd) Run() error {
	for _, v := range []float64{l.Hang, l.Rate503, l.Rate500, l.Rate429, l.Malformed, l.MissingField} {
		if v < 0 || v > 1 {
			return fmt.Errorf("fault rates must lie in [0, 1], got %v", v)
		}
	}
	srv := langextractd.New(langextractd.Faults{Latency: l.Latency, Hang: l.Hang, Rate503: l.Rate503, Rate500: l.Rate500,
		Rate429: l.Rate429, Malformed: l.Malformed, MissingField: l.MissingField})
	hs := &http.Server{Addr: l.Addr, Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "langextract-compatible server (built-in analyzer) on %s\n", l.Addr)
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func main() {
	var c cli
	ctx := kong.Parse(&c, kong.Name("worker"),
		kong.Description("hybridscore worker: scores pattern/task similarity jobs from NATS JetStream."),
		kong.Vars{"version": server.Version}, kong.ShortUsageOnError(), kong.Help(helpWithSettings), kong.Exit(config.UsageExit))
	if err := ctx.Run(); err != nil {
		if !errors.Is(err, errExit) {
			fmt.Fprintln(os.Stderr, "worker:", err)
		}
		os.Exit(1)
	}
}
