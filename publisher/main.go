// Command publisher publishes hybridscore jobs and collects their results:
// one job (submit), a JSONL or CSV file (batch), a benchmark (bench), or a
// self-contained demonstration on an embedded worker (demo).
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/bench"
	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/tracing"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

//go:embed demo_jobs.jsonl
var demoJobs []byte

// natsFlags are the publisher's connection settings: the worker's (one
// shared definition of authentication and TLS).
type natsFlags struct {
	NATSURL         string `name:"nats-url" env:"NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS servers."`
	config.NATSAuth `embed:""`
}

func (n natsFlags) connect() (*producer.Client, error) {
	if err := config.CheckNATSURL(n.NATSURL); err != nil {
		return nil, err
	}
	auth, err := n.NATSAuth.Options(n.NATSURL)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(n.NATSURL, append(auth, nats.Name("hybridscore-publisher"), nats.MaxReconnects(-1), nats.ErrorHandler(asyncError))...)
	if err != nil {
		err = config.RedactError(err, n.NATSURL)
		if errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("NATS at %s (--nats-url, NATS_URL): %w: is NATS running there? A worker started without NATS_URL serves it on 127.0.0.1:4222", config.RedactURL(n.NATSURL), err)
		}
		return nil, fmt.Errorf("NATS at %s (--nats-url, NATS_URL): %w", config.RedactURL(n.NATSURL), err)
	}
	return producer.NewClient(nc)
}

// asyncError prints what NATS reports apart from a call, as nats.go's
// default does, except a refusal to read the dead letters: a user without
// that right meets it on every submit, which reports it itself when it
// matters (a job that gets no answer), as dlq list does.
func asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), topology.DLQStream) {
		return
	}
	fmt.Fprintln(os.Stderr, "nats:", err)
}

type cli struct {
	// Tracing (OpenTelemetry), as the worker's: off unless configured.
	config.Tracing `embed:""`

	Submit   submitCmd   `cmd:"" help:"Publish one job and print its result."`
	Batch    batchCmd    `cmd:"" help:"Publish a JSONL or CSV file of jobs and collect the results."`
	Bench    benchCmd    `cmd:"" help:"Benchmark a worker (cold, warm, concurrent; --baseline: the raw JetStream loop; --mixed: interactive and bulk jobs)."`
	Demo     demoCmd     `cmd:"" help:"Start an embedded NATS server and worker, score sample jobs, print the results."`
	DLQ      dlqCmd      `cmd:"" name:"dlq" help:"List dead letters by reason and lane; replay selected ones after a fix."`
	Backup   backupCmd   `cmd:"" help:"Save the streams (jobs, results, dead letters, claims): configurations, consumers and every message, with a checksummed manifest."`
	Restore  restoreCmd  `cmd:"" help:"Recreate streams from a backup: checksums first, messages in order, counts checked; --replace to overwrite streams holding messages."`
	Evaluate evaluateCmd `cmd:"" help:"Score a labelled set of task/pattern pairs under many weight configurations; report ROC AUC, AP, P@k, best threshold."`
	Cache    cacheCmd    `cmd:"" help:"A worker's cache: report (effectiveness and the size/TTL recommendation), export (a warm file), warm."`
	Smoke    smokeCmd    `cmd:"" help:"Check a running deployment: one job per outcome (scored, degraded, rejected, expired), /health and /metrics; non-zero exit on any failure."`
	Console  consoleCmd  `cmd:"" help:"Serve the operator's web console (--listen): backlogs, dead letters (replay, delete), a job by id, every worker (breaker reset, cache report); talks only to NATS."`

	Capacity capacityCmd `cmd:"" help:"Monthly capacity report from Prometheus: jobs/s per class, p95, fallback and cache hit rates, backlog trend, workers needed for --target-rate."`

	Version kong.VersionFlag `help:"Print the version."`
}

type submitCmd struct {
	natsFlags
	File         string        `short:"f" type:"existingfile" help:"JSON file holding the job (instead of the flags)."`
	Lane         string        `default:"default" help:"Lane (scoring.jobs.<lane>)."`
	JobID        string        `help:"job_id; default derived from the content."`
	Task         string        `help:"task_description."`
	Pattern      string        `help:"historical_pattern_text."`
	Vector       float64       `help:"vector_similarity in [0, 1]."`
	Complexity   string        `help:"task_characteristics.complexity."`
	FeatureLabel string        `help:"task_characteristics.feature_label."`
	OnFallback   string        `help:"degrade or retry."`
	Deadline     string        `help:"RFC 3339 deadline."`
	Timeout      time.Duration `default:"30s" help:"How long to wait for the result."`
}

func (s *submitCmd) Run(ctx context.Context) error {
	var w job.Wire
	if s.File != "" {
		b, err := os.ReadFile(s.File)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &w); err != nil {
			return fmt.Errorf("%s: %w", s.File, err)
		}
	} else {
		if s.Task == "" || s.Pattern == "" {
			return errors.New("give --task and --pattern (and --vector), or --file")
		}
		w = job.Wire{JobID: s.JobID, TaskDescription: s.Task, HistoricalPatternText: s.Pattern, VectorSimilarity: s.Vector,
			OnFallback: s.OnFallback, Deadline: s.Deadline}
		if s.Complexity != "" || s.FeatureLabel != "" {
			w.TaskCharacteristics = &job.WireCharacteristics{Complexity: s.Complexity, FeatureLabel: s.FeatureLabel}
		}
	}
	c, err := s.connect()
	if err != nil {
		return err
	}
	defer c.NC.Close()
	r, err := c.Submit(ctx, s.Lane, w, s.Timeout)
	if err != nil {
		return err
	}
	return printJSON(r)
}

// printJSON prints a result as the worker wrote it, indented: its fields in
// the schema's order and its numbers as the worker's encoder wrote them
// (the shortest form that reads back as the same float64). Decoding it into
// a map and encoding that would sort the fields.
func printJSON(r json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, r, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := b.WriteTo(os.Stdout)
	return err
}

type batchCmd struct {
	natsFlags
	File        string        `arg:"" type:"existingfile" help:"Jobs: JSONL (one job per line) or CSV with a header row."`
	Format      string        `enum:",jsonl,csv" default:"" help:"jsonl or csv; default from the file name."`
	Lane        string        `default:"rescore" help:"Lane (scoring.bulk.<lane>, or scoring.jobs.<lane> with --interactive)."`
	Interactive bool          `help:"Publish as interactive jobs (scoring.jobs.<lane>) instead of bulk ones: they are served before every bulk job."`
	Out         string        `short:"o" required:"" help:"Results file (JSONL)."`
	Resume      bool          `help:"Append to --out and skip jobs already answered there."`
	Rate        float64       `help:"Jobs per second; 0 means as fast as the stream accepts."`
	MaxPending  int           `default:"10000" help:"Jobs published and not yet answered, at most."`
	Timeout     time.Duration `default:"5m" help:"Wait for results after the last job is published; exit non-zero when some are missing."`
	RunID       string        `help:"Also copy this run's results to scoring.results.<lane>.batch.<run-id> (a second stored message a job, for a subscriber of the run; it replaces a job's own reply_subject). Default: none, each job keeps the reply_subject it names; the results are read from each job's own result subject, where a rerun finds them too."`
	Progress    string        `enum:"auto,always,never" default:"auto" help:"auto: a progress bar on a terminal, a plain line every 5 s otherwise; always; never."`
	NoProgress  bool          `help:"Same as --progress never."`
}

// Validate refuses a lane that is no lane as a usage error, before the
// results file is touched or NATS is asked anything.
func (b *batchCmd) Validate() error {
	if b.RunID != "" && (strings.Contains(b.RunID, ".") || !job.ValidSubject(b.RunID)) {
		return fmt.Errorf("--run-id %q is not one subject token (no dot, wildcard or white space)", b.RunID)
	}
	return validLane(b.Lane)
}

// Validate: as batchCmd's.
func (s *submitCmd) Validate() error { return validLane(s.Lane) }

func validLane(lane string) error {
	if !job.ValidLane(lane) {
		return fmt.Errorf("--lane %q is not one token of [A-Za-z0-9_-]", lane)
	}
	return nil
}

func (b *batchCmd) Run(ctx context.Context) error {
	format := b.Format
	if format == "" {
		format = "jsonl"
		if strings.EqualFold(filepath.Ext(b.File), ".csv") {
			format = "csv"
		}
	}
	total, err := countJobs(b.File, format)
	if err != nil {
		return err
	}
	var reply string
	if b.RunID != "" {
		reply = topology.ResultsPrefix + b.Lane + ".batch." + b.RunID
	}
	// NATS first: a run that cannot start leaves the results file of the
	// run before as it was.
	c, err := b.connect()
	if err != nil {
		return err
	}
	defer c.NC.Close()
	var answered []string
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if b.Resume {
		if answered, err = readAnswered(b.Out); err != nil {
			return err
		}
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	out, err := os.OpenFile(b.Out, flags, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	in, err := os.Open(b.File)
	if err != nil {
		return err
	}
	defer in.Close()
	src, err := producer.NewSource(bufio.NewReaderSize(in, 1<<20), format)
	if err != nil {
		return fmt.Errorf("%s: %w", b.File, err)
	}
	mode := b.Progress
	if b.NoProgress {
		mode = "never"
	}
	prog := newProgress(mode, os.Stderr, total, len(answered))
	invalid := 0
	sum, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: b.Lane, Bulk: !b.Interactive, ReplySubject: reply,
		Rate: b.Rate, MaxPending: b.MaxPending, Timeout: b.Timeout, Out: out, Answered: answered,
		Progress: func(int) { prog.add() },
		OnInvalid: func(err error) {
			if invalid++; invalid <= 10 {
				fmt.Fprintf(os.Stderr, "skipping %s: %v\n", b.File, err)
			}
		}})
	prog.finish()
	if sum != nil {
		if reply != "" {
			fmt.Printf("results on scoring.results.%s.<job> and copied to %s, written to %s\n", b.Lane, reply, b.Out)
		} else {
			fmt.Printf("results on scoring.results.%s.<job>, written to %s\n", b.Lane, b.Out)
		}
		sum.Write(os.Stdout)
	}
	if err == nil && sum != nil && sum.Invalid > 0 {
		// A pipeline checks the exit status, not the summary: a line it
		// sent that was never published is a failure of the run.
		return fmt.Errorf("%d input lines of %s could not be read as jobs and were not published (the first are named above)", sum.Invalid, b.File)
	}
	return err
}

func countJobs(path, format string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	n := 0
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) > 0 {
			n++
		}
	}
	if format == "csv" && n > 0 {
		n-- // header (a quoted field spanning lines makes this an estimate)
	}
	return n, sc.Err()
}

// readAnswered returns the job ids in an existing results file.
func readAnswered(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		var r struct {
			JobID string `json:"job_id"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.JobID != "" {
			ids = append(ids, r.JobID)
		}
	}
	return ids, sc.Err()
}

type benchCmd struct {
	NATSURL     string        `name:"nats-url" env:"NATS_URL" help:"A nats-server in its own process: the bench starts the worker (--worker-bin) as a child process per scenario. Empty: an embedded server and in-process workers."`
	WorkerBin   string        `name:"worker-bin" help:"With --nats-url: the worker executable (default: worker next to this program, else on $PATH)."`
	Jobs        int           `default:"100000" help:"Jobs per throughput scenario (raw loop and warm worker rounds, concurrent)."`
	ColdJobs    int           `default:"2000" help:"Jobs of the cold-cache scenario."`
	Rounds      int           `default:"3" help:"Rounds of raw loop and warm worker; the medians are compared."`
	Baseline    bool          `help:"Also run the raw JetStream loop (docs/operations.md#measuring-throughput) and print the ratio worker/raw."`
	SameWrite   bool          `name:"same-write" help:"With the raw loop (implies --baseline), also run it storing each result the worker's way (on its job's own subject with Nats-Expected-Last-Subject-Sequence: 0) and print worker/that too: the worker's own cost, apart from what the server charges for that check."`
	Concurrency int           `help:"Worker concurrency (WORKER_CONCURRENCY; default: the worker's)."`
	Rate        float64       `default:"1000" help:"Steady-rate latency scenario, jobs/s (0 skips it)."`
	RateFor     time.Duration `default:"10s" help:"Duration of the steady-rate scenario."`
	SyncAlways  bool          `help:"Embedded server: fsync every write."`
	Soak        int           `help:"Only a soak: this many jobs through one worker, 100,000 at a time; prints its resident set after the first 100,000 and at the end."`
	Mixed       bool          `help:"Also run the mixed scenario, after the others: interactive latency idle and behind a bulk backlog, bulk alone vs interactive alone, bulk's share under saturation (WORKER_BULK_SHARE)."`
	MixedFor    time.Duration `default:"20s" help:"Mixed scenario: duration of its interactive traffic (200 jobs/s), idle and behind the bulk backlog."`
	MixedBulk   int           `default:"100000" help:"Mixed scenario: bulk backlog (cold jobs), at least; more when this run's cold-cache rate would drain it before the interactive traffic ends."`
	Replies     int           `help:"Also run N jobs with a reply subject each (pipeline.<lane>.job<i>) and N with one shared reply subject, alternating, at least nine rounds each, and print the ratio of the medians."`
	Trickle     bool          `help:"Only the trickle scenario: --jobs warm bulk jobs drained alone and beside 2 interactive jobs/s (--rounds rounds; target ≥ 0.8 of alone), then bulk's share under saturation (--jobs cold interactive jobs, half as many bulk)."`
}

func (b *benchCmd) Run(ctx context.Context) error {
	_, err := bench.Run(ctx, bench.Options{NATSURL: b.NATSURL, WorkerBin: b.WorkerBin, Jobs: b.Jobs, ColdJobs: b.ColdJobs, Rounds: b.Rounds,
		Baseline: b.Baseline || b.SameWrite, SameWrite: b.SameWrite, Concurrency: b.Concurrency, Rate: b.Rate, RateFor: b.RateFor, SyncAlways: b.SyncAlways,
		Mixed: b.Mixed, MixedFor: b.MixedFor, MixedBulk: b.MixedBulk, Replies: b.Replies, Soak: b.Soak, Trickle: b.Trickle, Out: os.Stdout})
	return err
}

type demoCmd struct {
	Out string `default:"" help:"Also write the results (JSONL) here."`
}

func (d *demoCmd) Run(ctx context.Context) error {
	cfg := config.Defaults()
	cfg.NATSListen = "127.0.0.1:0"
	dir, err := os.MkdirTemp("", "hybridscore-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.NATSStoreDir = dir
	cfg.HTTPAddr = "127.0.0.1:0"
	s, err := server.New(ctx, cfg, zap.NewNop())
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(wctx) }()
	defer func() { cancel(); <-done }()
	fmt.Printf("embedded NATS at %s, worker with the built-in analyzer, memory cache; health at http://%s/health\n\n", s.NATSURL(), s.HTTPAddr())
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := producer.NewClient(nc)
	if err != nil {
		return err
	}
	src, _ := producer.NewSource(strings.NewReader(string(demoJobs)), "jsonl")
	var results strings.Builder
	sum, err := c.Batch(ctx, producer.BatchOptions{Source: src, Lane: "demo", Out: &results, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	if d.Out != "" {
		if err := os.WriteFile(d.Out, []byte(results.String()), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%-9s %-9s %7s %7s %7s  %-22s %s\n", "job", "status", "hybrid", "vector", "pattern", "cache task/pattern", "note")
	lines := strings.Split(strings.TrimSpace(results.String()), "\n")
	slices.Sort(lines) // each line starts with the same fields up to job_id
	for _, line := range lines {
		var r job.Result
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		num := func(p *float64) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf("%.3f", *p)
		}
		cache, note := "-", ""
		if r.Cache != nil {
			cache = r.Cache.Task + "/" + r.Cache.Pattern
		}
		if r.Error != nil {
			note = r.Error.Code + ": " + r.Error.Message
		} else if r.AdjustmentReason != nil {
			note = fmt.Sprintf("weights %.1f/%.1f (%s)", *r.VectorWeight, *r.PatternWeight, *r.AdjustmentReason)
		}
		fmt.Printf("%-9s %-9s %7s %7s %7s  %-22s %s\n", r.JobID, r.Status, num(r.HybridScore), num(r.VectorScore), num(r.PatternScore), cache, note)
	}
	fmt.Println()
	sum.Write(os.Stdout)
	return nil
}

func main() {
	var c cli
	ctx := kong.Parse(&c, kong.Name("publisher"), kong.Description("hybridscore publisher: submit jobs, run batches, benchmark workers."),
		kong.Vars{"version": server.Version}, kong.ShortUsageOnError(), kong.Exit(config.UsageExit))
	traces, err := tracing.Setup(context.Background(), c.Tracing.TracingConfig("hybridscore-publisher", server.Version))
	if err == nil {
		// Every command runs until done or interrupted: Run methods take
		// this context.
		sig, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		ctx.BindTo(sig, (*context.Context)(nil))
		err = ctx.Run()
		stop()
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if terr := traces(tctx); terr != nil {
			fmt.Fprintln(os.Stderr, "publisher: flushing traces:", terr)
		}
		cancel()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		if noStreams(ctx.Command(), err) {
			fmt.Fprintln(os.Stderr, "publisher: the streams do not exist on this NATS yet: a worker creates them when it starts (PROVISION=true); start one against it, or create them as docs/contract.md describes")
		}
		os.Exit(1)
	}
}

// noStreams tells whether err, of a command that publishes jobs or reads
// results or dead letters, says a scoring stream is missing: most often no
// worker has run against this server yet.
func noStreams(command string, err error) bool {
	switch strings.Fields(command + " x")[0] {
	case "submit", "batch", "dlq":
		return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound)
	}
	return false
}
