package bench

// The mixed scenario (Options.Mixed): interactive jobs (scoring.jobs.<lane>,
// consumer hybrid-scorer) and bulk jobs (scoring.bulk.<lane>, consumer
// hybrid-scorer-bulk) on one worker, which serves interactive jobs first and
// guarantees bulk jobs WORKER_BULK_SHARE of its capacity while interactive
// ones saturate it. Four figures, each with a fresh worker:
//
//  1. idle: interactive jobs at 200/s on an otherwise idle worker,
//     publish→result p50/p99;
//  2. backlog: the same while a backlog of bulk jobs published beforehand
//     keeps the worker busy for all of the interactive traffic, the backlog
//     at its start and end, and the ratio of the two p99s (target ≤ 3);
//  3. bulk alone: warm jobs drained as bulk ones and, in the same round, as
//     interactive ones; the ratio of the rates (target ≥ 0.9);
//  4. share: interactive jobs and half as many bulk jobs queued beforehand;
//     when half of the interactive ones have results, the bulk jobs' part
//     of the results so far, next to WORKER_BULK_SHARE (target ± 0.03).
//
// The bulk backlog of 2 is cold: every bulk job has texts of its own, which
// the worker analyses twice (the built-in analyzer: about 10,000 jobs/s on
// two cores), where a warm job costs only its broker round trips (20,000 to
// 30,000 jobs/s). A warm backlog would have to be 600,000 jobs or more to
// last 20 s, all stored (then purged) on the server under test, and cold
// jobs are what batch rescoring brings: new texts. The backlog is at least
// --mixed-bulk jobs, more when this run's cold-cache rate says fewer would
// drain before the interactive traffic ends (bulkBacklogJobs); whether it
// lasted is watched and printed.
//
// The jobs of 4 are cold too, both classes: the worker is then bound by its
// own work (analyses, CPU), and both classes compete at every place where a
// job waits in the worker (room, pool, analysis slots), rather than only for
// the broker's round trips.

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// mixedRate is the interactive jobs/s of the mixed scenario's latencies.
const mixedRate = 200

// Targets of the mixed scenario.
const (
	targetP99Ratio  = 3.0  // interactive p99 under a bulk backlog ÷ idle p99, at most
	targetBulkRatio = 0.9  // bulk drained alone ÷ interactive drained alone, at least
	targetShareTol  = 0.03 // bulk's part of the work under saturation, off WORKER_BULK_SHARE by at most
)

// Mixed holds the mixed scenario's figures.
type Mixed struct {
	Share float64 // WORKER_BULK_SHARE of the workers

	// Interactive jobs at 200/s on an otherwise idle worker.
	IdleP50, IdleP99 float64 // ms, publish→result
	IdleJobs         int

	// The same behind a backlog of cold bulk jobs.
	BacklogBulkJobs          int     // bulk jobs published as the backlog
	BacklogP50, BacklogP99   float64 // ms, publish→result
	BacklogJobs              int
	BacklogStart, BacklogEnd Backlog // when the interactive traffic started and when its last job was published
	// BacklogDrainedAfter, when not 0, is how long into the interactive
	// traffic the backlog was gone: it did not last all of it.
	BacklogDrainedAfter time.Duration
	P99Ratio            float64 // BacklogP99 ÷ IdleP99

	// Warm bulk jobs drained alone vs the same interactive ones, in the
	// same rounds (medians).
	BulkAlone, InteractiveAlone             Throughput
	BulkAloneRounds, InteractiveAloneRounds []Throughput
	BulkRatio                               float64 // BulkAlone ÷ InteractiveAlone, results/s

	// Both classes queued beforehand; results so far when half of the
	// interactive jobs had theirs.
	SaturationJobs        int // interactive jobs published (and half as many bulk ones)
	SaturationInteractive int
	SaturationBulk        int
	BulkFraction          float64 // SaturationBulk ÷ (SaturationBulk + SaturationInteractive)
	// BulkFractionLater is the same of the results stored between a quarter
	// and half of the interactive jobs' (without the worker's start).
	BulkFractionLater float64
}

// Backlog is the bulk backlog at one moment.
type Backlog struct {
	Left int // bulk jobs of the backlog's lane without a stored result
	// Of consumer hybrid-scorer-bulk (every lane): jobs not yet delivered,
	// and delivered but not acknowledged.
	Pending, AckPending uint64
}

func (k Backlog) String() string {
	return fmt.Sprintf("%d jobs without a result (consumer %s: %d pending + %d unacked)", k.Left, topology.BulkConsumer, k.Pending, k.AckPending)
}

// bulkShare parses WORKER_BULK_SHARE as the worker does: empty is the
// default; otherwise a number in (0, 1).
func bulkShare(env string) (float64, error) {
	if env == "" {
		return config.Defaults().WorkerBulkShare, nil
	}
	v, err := strconv.ParseFloat(env, 64)
	if err != nil || !(v > 0 && v < 1) {
		return 0, fmt.Errorf("WORKER_BULK_SHARE=%q: must be a number in (0, 1)", env)
	}
	return v, nil
}

// bulkBacklogJobs returns how many cold bulk jobs make a backlog that lasts
// interactive traffic of dur: at least atLeast, and a quarter more than
// the cold-cache rate (results/s, 0 if unknown) drains in dur and the 2 s
// it may take to start a worker and score its probe job, but not more than
// five times atLeast (a cold-cache rate of a few jobs can be far off).
// Measured on two cores: a backlog drains, next to 200 interactive jobs/s,
// at 0.4 to 0.85 of the cold-cache rate of 2,000 jobs.
func bulkBacklogJobs(atLeast int, coldPerSec float64, dur time.Duration) int {
	need := math.Ceil(1.25 * coldPerSec * (dur + 2*time.Second).Seconds())
	if !(need > float64(atLeast)) {
		return atLeast
	}
	return int(min(need, 5*float64(atLeast)))
}

// fraction returns part ÷ (part + rest), 0 for none at all.
func fraction(part, rest int) float64 {
	if part+rest <= 0 {
		return 0
	}
	return float64(part) / float64(part+rest)
}

// ratio returns a ÷ b, 0 when b is not positive.
func ratio(a, b float64) float64 {
	if !(b > 0) {
		return 0
	}
	return a / b
}

// verdict says whether a target is met.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// jobsStream returns the stream of a jobs subject prefix.
func jobsStream(prefix string) string {
	if prefix == topology.BulkPrefix {
		return topology.BulkStream
	}
	return topology.JobsStream
}

// purgeJobs removes the jobs left on a subject of a jobs stream (a
// scenario's lane once its worker has stopped), so that no later worker
// scores them.
func (b *run) purgeJobs(ctx context.Context, prefix, lane string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, jobsStream(prefix))
	if err != nil {
		return
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(prefix+lane)); err != nil {
		b.printf("warning: purging %s%s: %v\n", prefix, lane, err)
	}
}

// mixed runs the mixed scenario.
func (b *run) mixed(ctx context.Context, tasks, patterns, warm []string) error {
	share, err := bulkShare(os.Getenv("WORKER_BULK_SHARE"))
	if err != nil {
		return err
	}
	b.share = share
	m := &b.rep.Mixed
	m.Share = share

	p50, p99, n, peak, err := b.idleLatency(ctx, mixedRate, b.o.MixedFor, tasks, patterns, warm)
	if err != nil {
		return fmt.Errorf("idle worker: %w", err)
	}
	m.IdleP50, m.IdleP99, m.IdleJobs = p50, p99, n
	b.printf("mixed, idle:          interactive %d jobs/s for %s: publish→result p50 %.3f ms, p99 %.3f ms over %d jobs%s\n",
		mixedRate, b.o.MixedFor, p50, p99, n, peakNote(peak))

	peak, err = b.underBacklog(ctx, tasks, patterns, warm)
	if err != nil {
		return fmt.Errorf("bulk backlog: %w", err)
	}
	b.printf("mixed, bulk backlog:  %d cold bulk jobs first; interactive %d jobs/s for %s: publish→result p50 %.3f ms, p99 %.3f ms over %d jobs%s\n",
		m.BacklogBulkJobs, mixedRate, b.o.MixedFor, m.BacklogP50, m.BacklogP99, m.BacklogJobs, peakNote(peak))
	b.printf("mixed, backlog start: %s\n", m.BacklogStart)
	b.printf("mixed, backlog end:   %s\n", m.BacklogEnd)
	if m.BacklogDrainedAfter > 0 {
		b.printf("warning: the bulk backlog drained %s into the %s of interactive traffic: publish more (--mixed-bulk)\n",
			m.BacklogDrainedAfter.Round(100*time.Millisecond), b.o.MixedFor)
	}
	b.printf("mixed, p99 ratio:     %.2f (interactive p99 under the bulk backlog ÷ idle; target ≤ %.0f: %s)\n",
		m.P99Ratio, targetP99Ratio, verdict(m.P99Ratio > 0 && m.P99Ratio <= targetP99Ratio))

	// Each round drains the same warm jobs as interactive ones and as bulk
	// ones, one right after the other (which first alternates): a shared
	// machine's load changes less within a round than across the run.
	for r := 1; r <= b.o.Rounds; r++ {
		order := []string{topology.JobsPrefix, topology.BulkPrefix}
		if r%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, prefix := range order {
			name, lane, into := "interactive alone", "bench-inter-"+nonce(), &m.InteractiveAloneRounds
			if prefix == topology.BulkPrefix {
				name, lane, into = "bulk alone       ", "bench-bulk-"+nonce(), &m.BulkAloneRounds
			}
			t, peak, err := b.scenario(ctx, prefix, lane, b.o.Jobs, tasks, patterns, warm, false)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", strings.TrimSpace(name), r, err)
			}
			*into = append(*into, t)
			b.printf("round %d/%d  worker, %s %s%s\n", r, b.o.Rounds, name, t, peakNote(peak))
		}
	}
	m.BulkAlone, m.InteractiveAlone = median(m.BulkAloneRounds), median(m.InteractiveAloneRounds)
	m.BulkRatio = ratio(m.BulkAlone.PerSec, m.InteractiveAlone.PerSec)
	b.printf("mixed, bulk alone:    median %.0f results/s of %d rounds (%s); interactive alone, same rounds: median %.0f (%s)\n",
		m.BulkAlone.PerSec, b.o.Rounds, rates(m.BulkAloneRounds), m.InteractiveAlone.PerSec, rates(m.InteractiveAloneRounds))
	b.printf("mixed, bulk/interactive throughput: %.2f (target ≥ %.1f: %s; against the warm-cache rounds above: %.2f)\n",
		m.BulkRatio, targetBulkRatio, verdict(m.BulkRatio >= targetBulkRatio), ratio(m.BulkAlone.PerSec, b.rep.Warm.PerSec))

	if err := b.saturation(ctx); err != nil {
		return fmt.Errorf("saturation: %w", err)
	}
	return nil
}

// underBacklog publishes a cold bulk backlog, starts a worker and measures
// interactive latency while the worker drains the backlog.
func (b *run) underBacklog(ctx context.Context, tasks, patterns, warm []string) (peak float64, err error) {
	m := &b.rep.Mixed
	n := bulkBacklogJobs(b.o.MixedBulk, b.rep.Cold.PerSec, b.o.MixedFor)
	if n > b.o.MixedBulk {
		b.printf("mixed: %d cold bulk jobs, not --mixed-bulk %d: at this run's cold-cache rate (%.0f results/s) fewer might not last %s (at most 5 × --mixed-bulk)\n",
			n, b.o.MixedBulk, b.rep.Cold.PerSec, b.o.MixedFor)
	}
	lane := "bench-backlog-" + nonce()
	c, err := b.collect(ctx, topology.ResultsPrefix+lane+".>", n)
	if err != nil {
		return 0, err
	}
	b.purgeLater(topology.ResultsPrefix + lane + ".>")
	// Deferred first, so it runs after the worker has stopped: the rest of
	// the backlog must not reach the next scenario's worker.
	defer b.purgeJobs(context.WithoutCancel(ctx), topology.BulkPrefix, lane)
	if err := b.publishJobs(ctx, topology.BulkPrefix+lane, lane, n, 2, func(i int) []byte { return coldJobFor(lane, i) }); err != nil {
		return 0, fmt.Errorf("publishing the backlog: %w", err)
	}
	m.BacklogBulkJobs = n
	w, err := b.startWorker(ctx, warm)
	if err != nil {
		return 0, err
	}
	defer func() {
		var serr error
		peak, serr = b.stopWorker(w)
		err = joinStop(err, serr, w)
	}()
	if err := b.ready(ctx, w, tasks, patterns); err != nil {
		return 0, err
	}
	if m.BacklogStart, err = b.backlog(ctx, c); err != nil {
		return 0, err
	}
	// Watch the backlog for the whole of the traffic: when did it drain?
	start := time.Now()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan time.Duration, 1)
	go func() {
		var drained time.Duration
		defer func() { watched <- drained }()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			if k, err := c.count(wctx); err == nil && k >= n {
				drained = time.Since(start)
				return
			}
		}
	}()
	var endErr error
	mlane := "bench-mixed-" + nonce()
	lat, err := b.latencies(ctx, w, topology.JobsPrefix+mlane, mlane, mixedRate, b.o.MixedFor, tasks, patterns, func() {
		m.BacklogEnd, endErr = b.backlog(ctx, c)
		stopWatch()
	})
	stopWatch()
	drained := <-watched
	if err == nil {
		err = endErr
	}
	if err != nil {
		return 0, err
	}
	m.BacklogP50, m.BacklogP99, m.BacklogJobs = producer.Percentile(lat, 0.5), producer.Percentile(lat, 0.99), len(lat)
	if drained > 0 || m.BacklogEnd.Left == 0 {
		m.BacklogDrainedAfter = max(drained, time.Millisecond)
	}
	m.P99Ratio = ratio(m.BacklogP99, m.IdleP99)
	return 0, nil
}

// backlog reads the bulk backlog: the jobs of c's lane without a result,
// and the bulk consumer's counts.
func (b *run) backlog(ctx context.Context, c *collector) (Backlog, error) {
	done, err := c.count(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("counting bulk results: %w", err)
	}
	k := Backlog{Left: max(0, c.want-done)}
	cons, err := b.js.Consumer(ctx, topology.BulkStream, topology.BulkConsumer)
	if err != nil {
		return Backlog{}, fmt.Errorf("consumer %s: %w", topology.BulkConsumer, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("consumer %s: %w", topology.BulkConsumer, err)
	}
	k.Pending, k.AckPending = info.NumPending, uint64(info.NumAckPending)
	return k, nil
}

// saturation queues Jobs interactive and Jobs/2 bulk jobs (cold, interactive
// first), starts a worker, and counts each class's results when half of the
// interactive jobs have theirs.
func (b *run) saturation(ctx context.Context) (err error) {
	m := &b.rep.Mixed
	n := b.o.Jobs
	nb := max(1, n/2)
	iLane, bLane := "bench-sat-i-"+nonce(), "bench-sat-b-"+nonce()
	ci, err := b.collect(ctx, topology.ResultsPrefix+iLane+".>", n)
	if err != nil {
		return err
	}
	cb, err := b.collect(ctx, topology.ResultsPrefix+bLane+".>", nb)
	if err != nil {
		return err
	}
	b.purgeLater(topology.ResultsPrefix + iLane + ".>")
	b.purgeLater(topology.ResultsPrefix + bLane + ".>")
	defer b.purgeJobs(context.WithoutCancel(ctx), topology.JobsPrefix, iLane)
	defer b.purgeJobs(context.WithoutCancel(ctx), topology.BulkPrefix, bLane)
	if err := b.publishJobs(ctx, topology.JobsPrefix+iLane, iLane, n, 2, func(i int) []byte { return coldJobFor(iLane, i) }); err != nil {
		return fmt.Errorf("publishing interactive jobs: %w", err)
	}
	if err := b.publishJobs(ctx, topology.BulkPrefix+bLane, bLane, nb, 2, func(i int) []byte { return coldJobFor(bLane, i) }); err != nil {
		return fmt.Errorf("publishing bulk jobs: %w", err)
	}
	m.SaturationJobs = n
	w, err := b.startWorker(ctx, nil)
	if err != nil {
		return err
	}
	var peak float64
	defer func() {
		var serr error
		peak, serr = b.stopWorker(w)
		err = joinStop(err, serr, w)
		if err == nil {
			b.printf("mixed, share:         %d interactive and %d bulk jobs queued (cold): at %d interactive results, %d bulk: bulk %.3f of the results; WORKER_BULK_SHARE %.2f (target ± %.2f: %s)%s\n",
				n, nb, m.SaturationInteractive, m.SaturationBulk, m.BulkFraction, m.Share, targetShareTol,
				verdict(math.Abs(m.BulkFraction-m.Share) <= targetShareTol), peakNote(peak))
			b.printf("mixed, share later:   bulk %.3f of the results stored between a quarter and half of the interactive jobs'\n", m.BulkFractionLater)
		}
	}()
	half, quarter := (n+1)/2, (n+3)/4
	var qi, qb int // counts when a quarter of the interactive jobs had results
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	seen, since := -1, time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.dead():
			return w.diedError()
		case <-tick.C:
		}
		// Bulk first, then interactive: a snapshot a few milliseconds wide.
		kb, err := cb.count(ctx)
		if err != nil {
			continue // a slow server: the stall timeout decides
		}
		ki, err := ci.count(ctx)
		if err != nil {
			continue
		}
		if ki >= quarter && qi == 0 {
			qi, qb = ki, kb
		}
		if ki >= half {
			m.SaturationInteractive, m.SaturationBulk, m.BulkFraction = ki, kb, fraction(kb, ki)
			m.BulkFractionLater = fraction(kb-qb, ki-qi)
			return nil
		}
		if ki+kb != seen {
			seen, since = ki+kb, time.Now()
		} else if time.Since(since) > stallTimeout {
			return fmt.Errorf("%d of %d interactive and %d of %d bulk results, none for %s", ki, n, kb, nb, stallTimeout)
		}
	}
}
