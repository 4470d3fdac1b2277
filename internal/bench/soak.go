package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hybridscore/hybridscore/internal/topology"
)

// soakChunk is how many jobs the soak publishes at a time: the worker
// drains each while the next waits, so the stream never holds a million.
const soakChunk = 100000

// Soak is the soak scenario's figures.
type Soak struct {
	Jobs          int
	RSSFirstMB    float64 // the worker's resident set after the first soakChunk results
	RSSEndMB      float64 // and after all of them
	PerSec        float64 // jobs/s over the whole soak
	GrowthPercent float64 // (end − first) ÷ first × 100
}

// soak runs Options.Soak jobs through one worker, chunk after chunk, and
// compares its resident set after the first chunk with the one at the end:
// a worker that leaks grows with the jobs it has seen.
func (b *run) soak(ctx context.Context, tasks, patterns, warm []string) error {
	n := b.o.Soak
	w, err := b.startWorker(ctx, warm)
	if err != nil {
		return err
	}
	if err := b.ready(ctx, w, tasks, patterns); err != nil {
		return joinStop(err, w.stop(), w)
	}
	start := time.Now()
	base := "bench-soak-" + nonce()
	s := Soak{Jobs: n}
	for done, k := 0, 0; done < n; k++ {
		m := min(soakChunk, n-done)
		lane := base + "-" + strconv.Itoa(k)
		c, err := b.collect(ctx, topology.ResultsPrefix+lane+".>", m)
		if err != nil {
			return joinStop(err, w.stop(), w)
		}
		if err := b.publishLane(ctx, topology.JobsPrefix+lane, lane, m, 1, tasks, patterns); err != nil {
			return joinStop(err, w.stop(), w)
		}
		if _, err := c.wait(ctx, w); err != nil {
			return joinStop(err, w.stop(), w)
		}
		b.purgeLater(topology.ResultsPrefix + lane + ".>")
		done += m
		if k == 0 {
			s.RSSFirstMB = w.rssMB()
		}
		b.printf("soak:                 %d of %d jobs, worker resident %.1f MB\n", done, n, w.rssMB())
	}
	s.RSSEndMB = w.rssMB()
	s.PerSec = float64(n) / time.Since(start).Seconds()
	if s.RSSFirstMB > 0 {
		s.GrowthPercent = (s.RSSEndMB - s.RSSFirstMB) / s.RSSFirstMB * 100
	}
	b.rep.Soak = s
	if _, err := b.stopWorker(w); err != nil {
		return err
	}
	b.printf("soak:                 %d jobs at %.0f/s (publishing included); worker resident %.1f MB after %d, %.1f MB after %d: %+.1f%%\n",
		n, s.PerSec, s.RSSFirstMB, min(soakChunk, n), s.RSSEndMB, n, s.GrowthPercent)
	return nil
}

func (c *child) rssMB() float64 {
	return procStatusMB(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid), "VmRSS:")
}

func (w *inProc) rssMB() float64 { return rssMB() }
