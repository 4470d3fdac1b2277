package bench

// The trickle scenario (Options.Trickle): does a trickle of interactive
// jobs throttle bulk? Each round drains the same warm bulk jobs twice, each
// time with a fresh worker: alone, and with interactive jobs arriving at
// trickleRate from the worker's start until the last bulk result. The
// ratio of the medians is the figure (target ≥ 0.8: bulk gets all that
// interactive jobs do not use). Then the saturation figure of the mixed
// scenario: with both classes queued, bulk's part of the results next to
// WORKER_BULK_SHARE (target ± 0.03): the share still holds as a floor.

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/topology"
)

// trickleRate is the interactive jobs/s of the trickle scenario.
const trickleRate = 2

// targetTrickleRatio: bulk beside the trickle ÷ bulk alone, at least.
const targetTrickleRatio = 0.8

// Trickle holds the trickle scenario's figures.
type Trickle struct {
	BulkAlone, BulkTrickle             Throughput // medians
	BulkAloneRounds, BulkTrickleRounds []Throughput
	Ratio                              float64 // BulkTrickle ÷ BulkAlone, results/s
	TrickleJobs                        int     // interactive jobs published beside bulk, all rounds
}

// trickle runs the trickle scenario, then the saturation figure.
func (b *run) trickle(ctx context.Context, tasks, patterns, warm []string) error {
	share, err := bulkShare(os.Getenv("WORKER_BULK_SHARE"))
	if err != nil {
		return err
	}
	b.share = share
	b.rep.Mixed.Share = share
	tr := &b.rep.Trickle
	for r := 1; r <= b.o.Rounds; r++ {
		order := []float64{0, trickleRate}
		if r%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, rate := range order {
			t, sent, peak, err := b.bulkBeside(ctx, "bench-trickle-"+nonce(), b.o.Jobs, rate, tasks, patterns, warm)
			if err != nil {
				return fmt.Errorf("round %d: %w", r, err)
			}
			name, into := "bulk alone              ", &tr.BulkAloneRounds
			if rate > 0 {
				name, into = fmt.Sprintf("bulk, interactive %d/s  ", trickleRate), &tr.BulkTrickleRounds
				tr.TrickleJobs += sent
			}
			*into = append(*into, t)
			b.printf("round %d/%d  %s%s%s\n", r, b.o.Rounds, name, t, peakNote(peak))
		}
	}
	tr.BulkAlone, tr.BulkTrickle = median(tr.BulkAloneRounds), median(tr.BulkTrickleRounds)
	tr.Ratio = ratio(tr.BulkTrickle.PerSec, tr.BulkAlone.PerSec)
	b.printf("trickle, bulk alone:  median %.0f results/s (%s); beside %d interactive jobs/s: median %.0f (%s)\n",
		tr.BulkAlone.PerSec, rates(tr.BulkAloneRounds), trickleRate, tr.BulkTrickle.PerSec, rates(tr.BulkTrickleRounds))
	b.printf("trickle, ratio:       %.2f (bulk beside the trickle ÷ alone; target ≥ %.1f: %s)\n",
		tr.Ratio, targetTrickleRatio, verdict(tr.Ratio >= targetTrickleRatio))
	if err := b.saturation(ctx); err != nil {
		return fmt.Errorf("saturation: %w", err)
	}
	m := &b.rep.Mixed
	b.printf("trickle, share:       %.3f under saturation (%.3f later), WORKER_BULK_SHARE %.2f (target ± %.2f: %s)\n",
		m.BulkFraction, m.BulkFractionLater, share, targetShareTol, verdict(math.Abs(m.BulkFraction-share) <= targetShareTol))
	return nil
}

// bulkBeside drains n warm bulk jobs queued beforehand with a fresh worker,
// publishing warm interactive jobs at rate (0: none) from its start until
// the last bulk result; sent is how many.
func (b *run) bulkBeside(ctx context.Context, lane string, n int, rate float64, tasks, patterns, warm []string) (t Throughput, sent int, peakMB float64, err error) {
	subject := topology.ResultsPrefix + lane + ".>"
	c, err := b.collect(ctx, subject, n)
	if err != nil {
		return Throughput{}, 0, 0, err
	}
	iLane := lane + "-i"
	b.purgeLater(subject)
	b.purgeLater(topology.ResultsPrefix + iLane + ".>")
	defer b.purgeJobs(context.WithoutCancel(ctx), topology.BulkPrefix, lane)
	defer b.purgeJobs(context.WithoutCancel(ctx), topology.JobsPrefix, iLane)
	if err := b.publishLane(ctx, topology.BulkPrefix+lane, lane, n, 1, tasks, patterns); err != nil {
		return Throughput{}, 0, 0, err
	}
	w, err := b.startWorker(ctx, warm)
	if err != nil {
		return Throughput{}, 0, 0, err
	}
	tctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var perr error
	if rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer tick.Stop()
			for ; ; sent++ {
				if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: topology.JobsPrefix + iLane, Data: jobFor(iLane, sent, tasks, patterns),
					Header: nats.Header{jetstream.MsgIDHeader: []string{iLane + "-" + strconv.Itoa(sent)}}}, stallWait); err != nil {
					perr = err
					return
				}
				select {
				case <-tctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	t, err = c.wait(ctx, w)
	stop()
	wg.Wait()
	if err == nil && perr != nil {
		err = fmt.Errorf("interactive trickle: %w", perr)
	}
	peakMB, serr := b.stopWorker(w)
	return t, sent, peakMB, joinStop(err, serr, w)
}
