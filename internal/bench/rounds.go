package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hybridscore/hybridscore/internal/topology"
)

// rounds runs the raw loop (with --baseline), the worker on a warm cache
// and, with SameWrite, the raw loop storing the worker's way, Rounds times,
// each round starting one design later than the round before (with two:
// the raw loop first in odd rounds, the worker in even ones), and reports
// the medians and their ratios.
func (b *run) rounds(ctx context.Context, tasks, patterns, warm []string) error {
	if b.o.Baseline {
		cleanup, err := b.rawSetup(ctx)
		if err != nil {
			return fmt.Errorf("raw loop: %w", err)
		}
		defer cleanup()
		// A short unmeasured pass first: the first writes to a fresh store
		// are slower, and the ceiling should not be measured cold.
		if _, err := b.rawOnce(ctx, max(b.o.Jobs/10, 500), tasks, patterns, withMsgID); err != nil {
			return fmt.Errorf("raw loop: %w", err)
		}
	}
	raw := func(form rawForm, label string, into *[]Throughput) func(int) error {
		return func(r int) error {
			t, err := b.rawOnce(ctx, b.o.Jobs, tasks, patterns, form)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", strings.TrimSpace(label), r, err)
			}
			*into = append(*into, t)
			b.printf("round %d/%d  %s %s\n", r, b.o.Rounds, label, t)
			return nil
		}
	}
	worker := func(r int) error {
		t, peak, err := b.scenario(ctx, topology.JobsPrefix, "bench-warm-"+nonce(), b.o.Jobs, tasks, patterns, warm, false)
		if err != nil {
			return fmt.Errorf("warm, round %d: %w", r, err)
		}
		b.rep.WarmRounds = append(b.rep.WarmRounds, t)
		b.printf("round %d/%d  worker (warm cache)   %s%s\n", r, b.o.Rounds, t, peakNote(peak))
		return nil
	}
	designs := []func(int) error{worker}
	if b.o.Baseline {
		designs = []func(int) error{raw(withMsgID, "raw JetStream loop   ", &b.rep.RawRounds), worker}
		if b.o.SameWrite {
			designs = append(designs, raw(perJobSubject, "raw loop, worker's write", &b.rep.SameRounds))
		}
	}
	for r := 1; r <= b.o.Rounds; r++ {
		// The order rotates: the server's CPU per job grows with what the
		// results stream holds (every earlier scenario's results), so
		// whichever went last in every round would always pay more.
		for i := range designs {
			if err := designs[(r-1+i)%len(designs)](r); err != nil {
				return err
			}
		}
	}
	if b.o.Baseline {
		b.rep.Raw = median(b.rep.RawRounds)
		b.printf("raw JetStream loop:   median %.0f results/s of %d rounds (%s)\n", b.rep.Raw.PerSec, b.o.Rounds, rates(b.rep.RawRounds))
	}
	if len(b.rep.SameRounds) > 0 {
		b.rep.Same = median(b.rep.SameRounds)
		b.printf("raw loop, worker's write: median %.0f results/s of %d rounds (%s)\n", b.rep.Same.PerSec, b.o.Rounds, rates(b.rep.SameRounds))
	}
	b.rep.Warm = median(b.rep.WarmRounds)
	b.printf("warm cache:           median %.0f results/s of %d rounds (%s)\n", b.rep.Warm.PerSec, b.o.Rounds, rates(b.rep.WarmRounds))
	if b.o.Baseline && b.rep.Raw.PerSec > 0 {
		b.rep.Ratio = b.rep.Warm.PerSec / b.rep.Raw.PerSec
		b.printf("ratio worker/raw:     %.2f (medians, warm cache, same server, same run)\n", b.rep.Ratio)
		if b.rep.Same.PerSec > 0 {
			b.rep.SameRatio = b.rep.Warm.PerSec / b.rep.Same.PerSec
			b.printf("ratio worker/same write: %.2f (against the raw loop storing each result on its job's own subject\n"+
				"                      with Nats-Expected-Last-Subject-Sequence: 0, as the worker does: the worker's own cost)\n", b.rep.SameRatio)
		}
		b.costs()
		b.spread()
		if w, r := float64(b.rep.Warm.ResultBytes), float64(b.rep.Raw.ResultBytes); w > 1.2*r || w < r/1.2 {
			b.printf("note: the worker's results are %.0f bytes, the raw loop's %.0f (sized to match: about %d)\n", w, r, rawResultBytes)
		}
	}
	return nil
}

// costs prints what a job costs each design in CPU (medians of the
// rounds), and how much CPU the hypervisor took meanwhile: on a shared
// host the rate of a round measures the neighbours too, its CPU per job
// hardly.
func (b *run) costs() {
	raw, warm := b.rep.RawRounds, b.rep.WarmRounds
	med := func(ts []Throughput, f func(Throughput) time.Duration) time.Duration {
		v := make([]time.Duration, len(ts))
		for i, t := range ts {
			v[i] = f(t)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	broker := func(t Throughput) time.Duration { return t.BrokerCPU }
	client := func(t Throughput) time.Duration { return t.ClientCPU }
	if rb, wb := med(raw, broker), med(warm, broker); rb > 0 && wb > 0 {
		rc, wc := med(raw, client), med(warm, client)
		b.rep.RawCPU, b.rep.WarmCPU = rb+rc, wb+wc
		b.printf("CPU per job:          raw loop %.1f µs (broker %.1f + loop %.1f), worker %.1f µs (broker %.1f + worker %.1f) (medians)\n",
			micros(rb+rc), micros(rb), micros(rc), micros(wb+wc), micros(wb), micros(wc))
		if same := b.rep.SameRounds; len(same) > 0 {
			sb, sc := med(same, broker), med(same, client)
			b.rep.SameCPU = sb + sc
			b.printf("                      raw loop, worker's write %.1f µs (broker %.1f + loop %.1f) (medians)\n", micros(sb+sc), micros(sb), micros(sc))
		}
	}
	hi := -1.0
	for _, t := range slices.Concat(raw, warm, b.rep.SameRounds) {
		hi = max(hi, t.Steal)
	}
	b.rep.MaxSteal = hi
	if hi >= stealNote {
		b.printf("note: the hypervisor took up to %.0f %% of this machine's CPU during the rounds (steal): their rates measure\n"+
			"      the other guests as much as the designs; compare CPU per job, or run again when steal stays under %.0f %%\n", 100*hi, 100*stealNote)
	}
}

// spread notes how far apart the raw loop's rounds were. They do the same
// work against the same server, so what separates them is the machine: on
// a shared host its speed can change by a third within a minute without
// any steal being counted (a neighbour's load on the caches and memory),
// and a ratio of medians taken across such a change says little.
func (b *run) spread() {
	b.rep.RawSpread = spreadOf(b.rep.RawRounds)
	if b.rep.RawSpread >= spreadNote {
		b.printf("note: the raw loop's rounds, the same work each time, differ by %.0f %% (%s results/s): the machine's\n"+
			"      speed changed during the run, and the ratio with it; run again, or with more --rounds\n", 100*b.rep.RawSpread, rates(b.rep.RawRounds))
	}
}

// spreadOf is how much faster the fastest round was than the slowest, as
// a share of the slowest (0 with fewer than two rounds).
func spreadOf(ts []Throughput) float64 {
	if len(ts) < 2 {
		return 0
	}
	lo, hi := ts[0].PerSec, ts[0].PerSec
	for _, t := range ts[1:] {
		lo, hi = min(lo, t.PerSec), max(hi, t.PerSec)
	}
	if lo <= 0 {
		return 0
	}
	return hi/lo - 1
}

// spreadNote is the spread of the raw loop's rounds from which the bench
// warns that the machine's speed changed during the run: on a quiet
// machine its rounds stay within about a tenth of each other.
const spreadNote = 0.15

// stealNote is the steal from which the bench warns that its rates are
// not the machine's.
const stealNote = 0.05

func peakNote(mb float64) string {
	if mb <= 0 {
		return ""
	}
	return fmt.Sprintf(" (worker peak RSS %.1f MB)", mb)
}
