// Package bench measures a worker's throughput
// (docs/operations.md#measuring-throughput). The ceiling
// is the fastest raw JetStream loop with the worker's durability: pull with
// 1000 jobs buffered, store a same-size result with Nats-Msg-Id through
// asynchronous publishes, ack each job when its own PubAck arrives, no
// decoding, no scoring (raw.go). The raw loop and the worker run on the same
// server in the same run, one after the other (the raw loop first in odd
// rounds, the worker in even ones), each draining a lane of jobs
// published beforehand (50 distinct task texts, 37 distinct pattern texts:
// the cache is warm), timed from the first stored result to the last by the
// result stream's own timestamps; several rounds, medians, and the ratio
// worker ÷ raw loop. With Options.SameWrite a third design joins the
// rounds (each round then starts one design later): the raw loop storing
// each result the worker's way, which tells the worker's own cost from
// what the server charges for that write. It also runs a cold-cache and a
// concurrent-publisher scenario and a steady-rate latency test; with
// Options.Mixed, the two job classes side by side (mixed.go).
//
// With no server URL it starts an embedded server and in-process workers.
// Given one (a nats-server in its own process), it starts the worker
// executable as a child process for each scenario, after the scenario's
// jobs are published, stops it with SIGTERM once every result is stored,
// and reports its peak resident set.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// Distinct texts of the warm scenarios: job i uses task text i%50 and
// pattern text i%37.
const (
	taskTexts    = 50
	patternTexts = 37
)

// Options configure a run.
type Options struct {
	// NATSURL of a nats-server in its own process; the bench starts the
	// worker (WorkerBin) as a child process for each scenario. "" starts
	// an embedded server and in-process workers.
	NATSURL string
	// WorkerBin is the worker executable (NATSURL set); "" means
	// DefaultWorkerBin.
	WorkerBin string
	Jobs      int  // jobs per throughput scenario; 0 means 100000
	ColdJobs  int  // jobs of the cold-cache scenario; 0 means 2000
	Rounds    int  // rounds of raw loop and warm worker; 0 means 3
	Baseline  bool // also run the raw JetStream loop and report the ratio
	// SameWrite (with Baseline) also runs the raw loop storing each result
	// on its job's own subject with Nats-Expected-Last-Subject-Sequence: 0,
	// as the worker does, and reports the worker's ratio to it too.
	SameWrite   bool
	Concurrency int           // worker concurrency; 0 means the worker's default
	Rate        float64       // steady-rate scenario, jobs/s; 0 skips it
	RateFor     time.Duration // steady-rate duration; 0 means 10 s
	SyncAlways  bool          // embedded server fsyncs every write
	// Mixed runs the interactive-and-bulk scenario after the others
	// (mixed.go).
	Mixed     bool
	MixedFor  time.Duration // interactive traffic of the mixed scenario; 0 means 20 s
	MixedBulk int           // bulk backlog, at least; 0 means 100000
	// Replies, when > 0, runs that many jobs with a reply subject each
	// (the NATS request pattern), then as many with one shared reply
	// subject, and reports their ratio (replies.go).
	Replies int
	// Soak, when > 0, runs only the soak scenario: that many jobs through
	// one worker, its resident set compared after the first 100,000 and at
	// the end (soak.go).
	Soak int
	// Trickle, when set, runs only the trickle scenario: bulk drained alone
	// and beside 2 interactive jobs/s, then bulk's share under saturation
	// (trickle.go).
	Trickle bool
	Out     io.Writer
	Log     *zap.Logger
}

// Report holds the figures of a run.
type Report struct {
	Raw, Warm              Throughput   // medians of the rounds
	RawRounds, WarmRounds  []Throughput // each round's
	Cold, Concurrent       Throughput
	Ratio                  float64 // median warm worker ÷ median raw loop
	LatencyP50, LatencyP99 float64 // ms, steady-rate scenario
	// RawLatencyP50 and RawLatencyP99 (ms, with --baseline) are the raw
	// loop's at the same rate: the floor the broker sets for the worker.
	RawLatencyP50, RawLatencyP99 float64
	// LatencySteal and RawLatencySteal are the shares of the machine's CPU
	// stolen while each was measured (-1: not measured).
	LatencySteal, RawLatencySteal float64
	LatencyJobs                   int
	// RawCPU and WarmCPU (with --baseline, a server on this machine) are
	// the CPU per job of each design, broker and client together (sums of
	// the rounds' medians).
	RawCPU, WarmCPU time.Duration
	// Same, SameRounds, SameRatio and SameCPU are the raw loop's storing
	// each result the worker's way (Options.SameWrite): what the worker
	// costs beside the server's price of its one-write check.
	Same       Throughput
	SameRounds []Throughput
	SameRatio  float64
	SameCPU    time.Duration
	// MaxSteal is the largest share of the machine's CPU the hypervisor
	// took during a round (-1: not measured).
	MaxSteal float64
	// RawSpread is how much faster the raw loop's fastest round was than
	// its slowest, as a share of the slowest: the same work each time, so
	// a wide spread means the machine's speed changed during the run.
	RawSpread       float64
	RSSMB           float64 // this process at the end (embedded: worker and server included)
	WorkerPeakRSSMB float64 // external server: the largest peak resident set (VmHWM) of the worker processes
	Mixed           Mixed   // Options.Mixed
	Replies         Replies // Options.Replies
	Soak            Soak    // Options.Soak
	Trickle         Trickle // Options.Trickle
}

// Throughput is one scenario's result.
type Throughput struct {
	Jobs    int
	Elapsed time.Duration // first stored result to last
	PerSec  float64
	// ResultBytes is the size of a stored result (the mean of the first
	// and the last).
	ResultBytes int
	// BrokerCPU is the nats-server's CPU time per job while the lane
	// drained (an external server on this machine; 0: not measured).
	BrokerCPU time.Duration
	// ClientCPU is the client's CPU time per job while the lane drained:
	// the worker process's (from its start), or, for the raw loop, this
	// process's (the loop and the bench's polling); 0: not measured (an
	// in-process worker).
	ClientCPU time.Duration
	// Steal is the share of this machine's CPU time the hypervisor gave to
	// other guests while the lane drained (/proc/stat); -1: not measured.
	// Throughput measured under steal is the neighbours' as much as the
	// design's: CPU per job is not affected.
	Steal float64
}

// meter measures what one lane's drain costs: the broker's and the
// client's CPU, and the CPU time stolen from this machine.
type meter struct {
	b                *run
	broker0, client0 time.Duration
	client           func() time.Duration
	stolen           func() float64
}

// meter starts measuring; client reads the client's CPU time so far (nil:
// not measured, or a process not started yet, whose reader is set in
// m.client once it is, counting from 0).
func (b *run) meter(client func() time.Duration) *meter {
	m := &meter{b: b, broker0: b.brokerNow(), client: client, stolen: stealMeter()}
	if client != nil {
		m.client0 = client()
	}
	return m
}

// done fills t's costs per job for jobs jobs.
func (m *meter) done(t *Throughput, jobs int) {
	t.Steal = m.stolen()
	if jobs <= 0 {
		return
	}
	// /proc counts CPU time in ticks of 10 ms: under a tenth of a second
	// the figure per job is mostly rounding, and is not reported.
	if d := m.b.brokerNow() - m.broker0; d >= minCPU {
		t.BrokerCPU = d / time.Duration(jobs)
	}
	if m.client != nil {
		if d := m.client() - m.client0; d >= minCPU {
			t.ClientCPU = d / time.Duration(jobs)
		}
	}
}

// minCPU is the least CPU time a cost per job is computed from.
const minCPU = 100 * time.Millisecond

// stealMeter starts measuring steal; the function it returns reads the
// share of the machine's CPU stolen since (-1: not measured).
func stealMeter() func() float64 {
	total0, steal0 := cpuTicks()
	return func() float64 {
		// Ticks of 10 ms: below 20 of them (a tenth of a second of two
		// CPUs) the share is rounding.
		if total, steal := cpuTicks(); total-total0 >= 20 {
			return float64(steal-steal0) / float64(total-total0)
		}
		return -1
	}
}

// stealNoteOf is ", N % stolen" when the hypervisor took at least half a
// per cent of the machine's CPU.
func stealNoteOf(steal float64) string {
	if steal < 0.005 {
		return ""
	}
	return fmt.Sprintf(", %.0f %% stolen", 100*steal)
}

func (t Throughput) String() string {
	if t.Jobs == 0 {
		return "not run"
	}
	s := fmt.Sprintf("%d results of %d bytes in %s: %.0f results/s", t.Jobs, t.ResultBytes, t.Elapsed.Round(time.Millisecond), t.PerSec)
	if t.BrokerCPU > 0 {
		s += fmt.Sprintf(", broker CPU %.1f µs/job", micros(t.BrokerCPU))
	}
	if t.ClientCPU > 0 {
		s += fmt.Sprintf(", client CPU %.1f µs/job", micros(t.ClientCPU))
	}
	return s + stealNoteOf(t.Steal)
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// median returns the round of median rate (the mean of the middle two for
// an even count).
func median(ts []Throughput) Throughput {
	if len(ts) == 0 {
		return Throughput{}
	}
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b Throughput) int {
		switch {
		case a.PerSec < b.PerSec:
			return -1
		case a.PerSec > b.PerSec:
			return 1
		}
		return 0
	})
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		l := s[len(s)/2-1]
		m = Throughput{Jobs: m.Jobs, Elapsed: (l.Elapsed + m.Elapsed) / 2, PerSec: (l.PerSec + m.PerSec) / 2}
	}
	return m
}

func rates(ts []Throughput) string {
	f := make([]string, len(ts))
	for i, t := range ts {
		f[i] = strconv.FormatFloat(t.PerSec, 'f', 0, 64)
	}
	return strings.Join(f, ", ")
}

// Run runs the benchmark and prints its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	b := &run{o: o.withDefaults(), rep: &Report{}}
	return b.rep, b.run(ctx)
}

// withDefaults fills in every option left zero.
func (o Options) withDefaults() Options {
	if o.Jobs <= 0 {
		o.Jobs = 100000
	}
	if o.ColdJobs <= 0 {
		o.ColdJobs = 2000
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.RateFor <= 0 {
		o.RateFor = 10 * time.Second
	}
	if o.MixedFor <= 0 {
		o.MixedFor = 20 * time.Second
	}
	if o.MixedBulk <= 0 {
		o.MixedBulk = 100000
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return o
}

type run struct {
	o        Options
	rep      *Report
	nc       *nats.Conn
	js       jetstream.JetStream
	url      string
	embedded bool
	tmp      string               // scratch files (warm files of worker processes)
	purges   []string             // result subjects of the bench's lanes
	share    float64              // WORKER_BULK_SHARE of in-process workers; 0: the default
	broker   func() time.Duration // the external server's CPU so far; nil: unknown
}

func (b *run) printf(format string, args ...any) { fmt.Fprintf(b.o.Out, format, args...) }

func (b *run) run(ctx context.Context) error {
	var err error
	if b.tmp, err = os.MkdirTemp("", "hybridscore-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	closeAll, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	tasks, patterns := texts("task", taskTexts), texts("pattern", patternTexts)
	warm := slices.Concat(tasks, patterns)
	if b.o.Soak > 0 {
		return b.soak(ctx, tasks, patterns, warm)
	}
	if b.o.Trickle {
		return b.trickle(ctx, tasks, patterns, warm)
	}
	if err := b.rounds(ctx, tasks, patterns, warm); err != nil {
		return err
	}
	// Cold cache: every text new.
	coldTasks, coldPatterns := texts("cold-task-"+nonce(), b.o.ColdJobs), texts("cold-pattern-"+nonce(), b.o.ColdJobs)
	t, peak, err := b.scenario(ctx, topology.JobsPrefix, "bench-cold-"+nonce(), b.o.ColdJobs, coldTasks, coldPatterns, nil, false)
	if err != nil {
		return fmt.Errorf("cold: %w", err)
	}
	b.rep.Cold = t
	b.printf("cold cache:           %s%s\n", t, peakNote(peak))
	t, peak, err = b.scenario(ctx, topology.JobsPrefix, "bench-conc-"+nonce(), b.o.Jobs, tasks, patterns, warm, true)
	if err != nil {
		return fmt.Errorf("concurrent: %w", err)
	}
	b.rep.Concurrent = t
	b.printf("concurrent (10 pub):  %s%s\n", t, peakNote(peak))
	if b.o.Rate > 0 {
		stolen := stealMeter()
		peak, err := b.steady(ctx, tasks, patterns, warm)
		if err != nil {
			return fmt.Errorf("steady rate: %w", err)
		}
		b.rep.LatencySteal = stolen()
		b.printf("steady %.0f jobs/s:  publish→result p50 %.3f ms, p99 %.3f ms over %d jobs%s%s\n", b.o.Rate, b.rep.LatencyP50, b.rep.LatencyP99, b.rep.LatencyJobs,
			stealNoteOf(b.rep.LatencySteal), peakNote(peak))
		if b.o.Baseline {
			stolen = stealMeter()
			p50, p99, err := b.rawLatency(ctx, b.o.Rate, b.o.RateFor, tasks, patterns)
			if err != nil {
				return fmt.Errorf("steady rate, raw loop: %w", err)
			}
			b.rep.RawLatencyP50, b.rep.RawLatencyP99, b.rep.RawLatencySteal = p50, p99, stolen()
			b.printf("  raw loop, same rate: publish→result p50 %.3f ms, p99 %.3f ms%s (the broker's floor)\n", p50, p99, stealNoteOf(b.rep.RawLatencySteal))
		}
	}
	if b.o.Mixed {
		if err := b.mixed(ctx, tasks, patterns, warm); err != nil {
			return fmt.Errorf("mixed: %w", err)
		}
	}
	if b.o.Replies > 0 {
		if err := b.replies(ctx, tasks, patterns, warm); err != nil {
			return fmt.Errorf("reply subjects: %w", err)
		}
	}
	b.rep.RSSMB = rssMB()
	if b.embedded {
		b.printf("resident memory:      %.1f MB (this process, workers and NATS server included)\n", b.rep.RSSMB)
	} else {
		b.printf("resident memory:      worker peak %.1f MB (largest VmHWM of its processes); this bench process %.1f MB\n", b.rep.WorkerPeakRSSMB, b.rep.RSSMB)
	}
	return nil
}

// connect starts the embedded server (or checks the external one), connects
// and provisions the streams; closeAll undoes it.
func (b *run) connect(ctx context.Context) (closeAll func(), err error) {
	b.embedded, b.url = b.o.NATSURL == "", b.o.NATSURL
	if !b.embedded {
		b.broker = brokerCPU(b.url)
	}
	var undo []func()
	undoAll := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	closeAll = undoAll
	defer func() {
		// undoAll, not closeAll: an error return has set closeAll to nil.
		if err != nil {
			undoAll()
		}
	}()
	if b.embedded {
		srv, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: filepath.Join(b.tmp, "nats"), SyncAlways: b.o.SyncAlways})
		if err != nil {
			return nil, err
		}
		undo = append(undo, srv.Stop)
		b.url = srv.URL()
		b.printf("embedded NATS %s (sync_always=%v), file storage; in-process workers\n", b.url, b.o.SyncAlways)
	} else {
		if b.o.WorkerBin == "" {
			if b.o.WorkerBin, err = DefaultWorkerBin(); err != nil {
				return nil, err
			}
		}
		b.printf("NATS %s (external server); worker %s, a child process per scenario, its in-memory cache\n"+
			"  SEMANTIC_CACHE_MAX_SIZE=%s entries (the resident memory of cold scenarios includes what it holds)\n", b.url, b.o.WorkerBin, cacheSize())
		if b.o.SyncAlways {
			b.printf("(--sync-always applies to the embedded server only: the external server's own setting holds)\n")
		}
	}
	if b.nc, err = nats.Connect(b.url, nats.Name("hybridscore-bench"), nats.MaxReconnects(-1)); err != nil {
		return nil, err
	}
	undo = append(undo, b.nc.Close)
	if b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, err
	}
	if err := b.ensureStreams(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, func() { b.purge(context.WithoutCancel(ctx)) })
	if !b.embedded {
		b.checkIdle(ctx)
	}
	return closeAll, nil
}

// ensureStreams creates whichever of the contract's streams is missing,
// with topology's configuration; existing ones are the operator's and stay.
func (b *run) ensureStreams(ctx context.Context) error {
	for _, sc := range (topology.Config{}).Streams() {
		if _, err := b.js.Stream(ctx, sc.Name); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		if _, err := b.js.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// checkIdle warns when the external server has jobs waiting or a worker
// already pulling: the bench's worker would score those jobs too, or
// another worker would take the bench's lanes.
func (b *run) checkIdle(ctx context.Context) {
	for _, sc := range [][2]string{{topology.JobsStream, topology.Consumer}, {topology.BulkStream, topology.BulkConsumer}} {
		if s, err := b.js.Stream(ctx, sc[0]); err == nil && s.CachedInfo().State.Msgs > 0 {
			b.printf("warning: %s already holds %d jobs; the bench's worker will score them too\n", sc[0], s.CachedInfo().State.Msgs)
		}
		if c, err := b.js.Consumer(ctx, sc[0], sc[1]); err == nil && c.CachedInfo().NumWaiting > 0 {
			b.printf("warning: consumer %s has %d pull requests waiting: is another worker running on this server? It would take the bench's jobs\n",
				sc[1], c.CachedInfo().NumWaiting)
		}
	}
}

// purgeLater notes a lane's result subject, purged at the end of the run
// (external server: the results are the bench's and would only fill
// SCORING_RESULTS until they age out; not sooner, so that no purge runs on
// the server while a scenario is timed).
func (b *run) purgeLater(subject string) {
	if !b.embedded {
		b.purges = append(b.purges, subject)
	}
}

func (b *run) purge(ctx context.Context) {
	if len(b.purges) == 0 {
		return
	}
	s, err := b.js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		return
	}
	for _, subject := range b.purges {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
}

func nonce() string { return strconv.FormatInt(time.Now().UnixNano()%1e9, 36) }

// texts returns n distinct task-like texts of about 200 characters.
func texts(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = text(prefix, i)
	}
	return out
}

var textWords = []string{"implement", "OAuth2", "authentication", "tokens", "cache", "Redis", "sessions", "gateway", "validates", "signatures",
	"payments", "API", "service", "deploy", "Kubernetes", "queue", "NATS", "stream", "retry", "backoff", "metrics", "latency"}

// text returns text i of prefix: about 200 characters.
func text(prefix string, i int) string {
	var sb strings.Builder
	sb.WriteString(prefix)
	sb.WriteString(" ")
	sb.WriteString(strconv.Itoa(i))
	for j := 0; sb.Len() < 200; j++ {
		sb.WriteString(" ")
		sb.WriteString(textWords[(i*7+j*3+j*j)%len(textWords)])
	}
	return sb.String()
}

// jobFor returns job i of a lane: task text i%len(tasks), pattern text
// i%len(patterns).
func jobFor(lane string, i int, tasks, patterns []string) []byte {
	return jobOf(lane, i, tasks[i%len(tasks)], patterns[i%len(patterns)])
}

// coldJobFor returns job i of a lane with texts of its own (task and
// pattern text i of the lane): every job needs the analyzer, twice.
func coldJobFor(lane string, i int) []byte {
	return jobOf(lane, i, text(lane+" task", i), text(lane+" pattern", i))
}

func jobOf(lane string, i int, task, pattern string) []byte {
	w := job.Wire{JobID: lane + "-" + strconv.Itoa(i), TaskDescription: task, HistoricalPatternText: pattern,
		VectorSimilarity: float64(i%100) / 100, TaskCharacteristics: &job.WireCharacteristics{Complexity: "complex"}}
	b, _ := jsonMarshal(w)
	return b
}

// publishLane publishes n jobs of a lane to subject, asynchronously, from
// `publishers` goroutines, and waits for every PubAck.
func (b *run) publishLane(ctx context.Context, subject, lane string, n, publishers int, tasks, patterns []string) error {
	return b.publishJobs(ctx, subject, lane, n, publishers, func(i int) []byte { return jobFor(lane, i, tasks, patterns) })
}

// publishJobs publishes jobs 0..n-1 of a lane (job i's body is gen(i),
// its Nats-Msg-Id <lane>-<i>) to subject, like publishLane.
func (b *run) publishJobs(ctx context.Context, subject, lane string, n, publishers int, gen func(i int) []byte) error {
	var next atomic.Int64
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: gen(i),
					Header: nats.Header{jetstream.MsgIDHeader: []string{lane + "-" + strconv.Itoa(i)}}}, stallWait); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return errors.New("PubAcks did not complete")
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// collector waits for a lane's results and times them by the result
// stream's own timestamps, first stored result to last. It polls the
// stream's count of the lane's subject, then reads the first and the last
// message: the server does not deliver every result a second time, so the
// measurement costs the server (and this process) next to nothing.
type collector struct {
	s        jetstream.Stream
	cons     jetstream.Consumer // counts the lane's results from startSeq
	subject  string
	want     int
	startSeq uint64 // the lane's results come after it
}

// collect counts the results stored on subject (a lane's results,
// scoring.results.<lane>.>: one subject per job) from now on, through an
// ephemeral consumer's pending count.
func (b *run) collect(ctx context.Context, subject string, want int) (*collector, error) {
	s, err := b.js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		return nil, err
	}
	start := s.CachedInfo().State.LastSeq + 1
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{FilterSubject: subject, AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, InactiveThreshold: 10 * time.Minute, MemoryStorage: true})
	if err != nil {
		return nil, err
	}
	return &collector{s: s, cons: cons, subject: subject, want: want, startSeq: start}, nil
}

// count returns how many results the lane has stored.
func (c *collector) count(ctx context.Context) (int, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.NumPending), nil
}

// stallTimeout fails a scenario when no result arrived for that long.
const stallTimeout = time.Minute

// wait waits for every result, failing when the worker dies (w's dead
// closed) or no result arrives for stallTimeout.
func (c *collector) wait(ctx context.Context, w worker) (Throughput, error) {
	var dead <-chan struct{}
	if w != nil {
		dead = w.dead()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	seen, since := 0, time.Now()
	for seen < c.want {
		select {
		case <-ctx.Done():
			return Throughput{}, ctx.Err()
		case <-dead:
			return Throughput{}, w.diedError()
		case <-tick.C:
		}
		n, err := c.count(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Throughput{}, ctx.Err()
			}
			continue // a slow server: the stall timeout decides
		}
		if n != seen {
			seen, since = n, time.Now()
		} else if time.Since(since) > stallTimeout {
			return Throughput{}, fmt.Errorf("%d of %d results, none for %s", n, c.want, stallTimeout)
		}
	}
	if seen > c.want {
		return Throughput{}, fmt.Errorf("%d results stored for %d jobs: duplicates", seen, c.want)
	}
	first, err := c.s.GetMsg(ctx, c.startSeq, jetstream.WithGetMsgSubject(c.subject))
	if err != nil {
		return Throughput{}, fmt.Errorf("first result: %w", err)
	}
	// Nothing else stores results while a scenario runs: the stream's last
	// message is the lane's last result.
	info, err := c.s.Info(ctx)
	if err != nil {
		return Throughput{}, fmt.Errorf("last result: %w", err)
	}
	last, err := c.s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return Throughput{}, fmt.Errorf("last result: %w", err)
	}
	_ = c.s.DeleteConsumer(ctx, c.cons.CachedInfo().Name)
	el := last.Time.Sub(first.Time)
	t := Throughput{Jobs: c.want, Elapsed: el, ResultBytes: (len(first.Data) + len(last.Data)) / 2}
	if el > 0 {
		t.PerSec = float64(c.want-1) / el.Seconds()
	}
	return t, nil
}

// brokerNow is the broker's CPU time so far (0 when it cannot be read).
func (b *run) brokerNow() time.Duration {
	if b.broker == nil {
		return 0
	}
	return b.broker()
}
