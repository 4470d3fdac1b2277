package capacity

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// saturated reports whether a class's backlog was still there at the end
// of the window: only then was the rate seen limited by the workers rather
// than by the jobs that came.
func saturated(r *Report) bool {
	for _, c := range r.Classes {
		if c.Backlog != nil && c.Backlog.Last > 0 {
			return true
		}
	}
	return false
}

// recommend turns the figures into the lines an operator acts on: how many
// workers, and what to investigate. Each line starts with its verb.
func recommend(r *Report, th Thresholds) []string {
	var out []string

	switch {
	case r.Workers == nil:
		out = append(out, "investigate: Prometheus has no worker target (up) and no worker metrics in the window; check the scrape configuration (--job)")
	case r.Workers.PerWorker == nil:
		out = append(out, "no sizing: no job finished in the window, so no throughput per worker was measured")
	case r.Plan == nil:
		out = append(out, fmt.Sprintf("no sizing: at the peak each of %d worker(s) finished %s jobs/s; give --target-rate to size the pool",
			r.Workers.AtPeak, num(*r.Workers.PerWorker)))
	case r.Plan.Unsaturated && r.Plan.Workers == 0:
		out = append(out, fmt.Sprintf("no sizing: no consumer backlog lasted through the window, so the workers were not saturated: %s jobs/s per worker at the peak is what they were asked, a floor of what they can do, and no worker count follows from it; measure one worker's ceiling with `publisher bench`, or pass --size-unsaturated for a count from this floor (an upper bound)",
			num(*r.Workers.PerWorker)))
	default:
		need, now := r.Plan.Workers, r.Workers.Now
		what := fmt.Sprintf("for %s jobs/s with headroom ×%s at %s jobs/s per worker", num(r.Plan.TargetRate), num(r.Plan.Headroom),
			num(*r.Workers.PerWorker))
		if r.Plan.Unsaturated {
			what += fmt.Sprintf(", a floor: the workers were not saturated (no consumer backlog lasted through the window), so %d is an upper bound; `publisher bench` measures one worker's ceiling", need)
		}
		switch {
		case need > now:
			out = append(out, fmt.Sprintf("scale out: %d → %d workers %s", now, need, what))
		case need < now:
			line := fmt.Sprintf("scale in: %d → %d workers suffice %s", now, need, what)
			if need < 2 {
				line += " (two keep jobs flowing while one restarts)"
			}
			out = append(out, line)
		default:
			out = append(out, fmt.Sprintf("keep %d worker(s): that is what is needed %s", now, what))
		}
	}

	if c := r.Class("interactive"); c != nil {
		if c.P95 != nil && *c.P95 > th.InteractiveP95.Seconds() {
			out = append(out, fmt.Sprintf("investigate latency: interactive p95 over the window is %s, above %s (langextract latency, cache hit rate, saturated workers, bulk share)",
				seconds(*c.P95), th.InteractiveP95))
		}
		if b := c.Backlog; b != nil && b.Max > th.InteractiveBacklog {
			out = append(out, fmt.Sprintf("scale out or investigate: the interactive backlog reached %s jobs (above %s)", num(b.Max), num(th.InteractiveBacklog)))
		}
	}
	if c := r.Class("bulk"); c != nil && c.Backlog != nil {
		if b := c.Backlog; b.Last > b.First && b.SlopePerHour > 0 {
			out = append(out, fmt.Sprintf("scale out or raise WORKER_BULK_SHARE: the bulk backlog grew from %s to %s jobs (%s/h)",
				num(b.First), num(b.Last), signed(b.SlopePerHour)))
		}
	}

	if r.FallbackRate != nil && *r.FallbackRate > th.FallbackRate {
		reasons := slices.SortedFunc(maps.Keys(r.FallbackByReason), func(a, b string) int {
			switch x, y := r.FallbackByReason[a], r.FallbackByReason[b]; {
			case x > y:
				return -1
			case x < y:
				return 1
			}
			return 0
		})
		top := ""
		if len(reasons) > 0 {
			top = fmt.Sprintf(", most of them %s (%s)", reasons[0], pct(r.FallbackByReason[reasons[0]]))
		}
		out = append(out, fmt.Sprintf("investigate fallbacks: %s of scorings fell back to vector-only, above %s%s",
			pct(*r.FallbackRate), pct(th.FallbackRate), top))
	}
	if r.CacheHitRate != nil && *r.CacheHitRate < th.CacheHitRate {
		out = append(out, fmt.Sprintf("investigate the cache: hit rate %s, below %s (SEMANTIC_CACHE_MAX_SIZE, SEMANTIC_CACHE_TTL_SECONDS, Redis)",
			pct(*r.CacheHitRate), pct(th.CacheHitRate)))
	}
	return out
}

// num writes a figure with four significant digits, and whole numbers from
// 1000 on without an exponent (a backlog of 12000, not 1.2e+04).
func num(v float64) string {
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return fmt.Sprintf("%.4g", v)
}

func signed(v float64) string {
	if v >= 0 {
		return "+" + num(v)
	}
	return num(v)
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// seconds writes a latency in the unit that suits it.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", s*1e3)
	case d < time.Minute:
		return fmt.Sprintf("%.3gs", s)
	}
	return d.Round(time.Second).String()
}
