// Package health builds the /health report (docs/contract.md#the-health-report)
// and its text form, the "System Health Report".
package health

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Overall statuses.
const (
	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
	Disabled  = "disabled"
)

// The warnings of degraded and unhealthy reports.
const (
	WarnLangextract = "Langextract service unavailable - using vector-only scoring"
	WarnRedis       = "Redis unavailable - using in-memory cache only"
	WarnNATS        = "NATS unreachable - jobs are not being consumed"
	// WarnStreams is followed by the names of the missing streams.
	WarnStreams = "JetStream streams missing - jobs cannot be answered: "
)

// Report is the /health JSON.
type Report struct {
	Status          string            `json:"status"`
	Timestamp       string            `json:"timestamp"`
	Version         string            `json:"version"`
	Components      map[string]string `json:"components"`
	Warnings        []string          `json:"warnings"`
	UptimeSeconds   float64           `json:"uptime_seconds"`
	MemoryUsageMB   float64           `json:"memory_usage_mb"`
	CPUUsagePercent float64           `json:"cpu_usage_percent"`
	// Classes is each job class's backlog (interactive, bulk).
	Classes map[string]Class `json:"classes,omitempty"`
}

// Class is one job class's backlog, as last read from its consumer.
type Class struct {
	Pending       uint64  `json:"pending"`
	AckPending    uint64  `json:"ack_pending"`
	OldestSeconds float64 `json:"oldest_job_age_seconds"`
}

// Checker probes the components. Each probe is a function field so the
// worker wires in its own parts; a nil probe is reported healthy.
type Checker struct {
	Version string
	Start   time.Time
	// NATS reports whether the connection is up.
	NATS func() bool
	// Redis reports whether the Redis tier is configured and up.
	Redis func() (enabled, up bool)
	// Langextract reports "healthy", "degraded" or "unhealthy".
	Langextract func(ctx context.Context) string
	// Cache reports the cache component's status.
	Cache func() string
	// Classes reports the job classes' backlogs.
	Classes func() map[string]Class
	// Streams reports the topology's streams found missing (none: all
	// there).
	Streams func() []string

	mu       sync.Mutex
	lastCPU  time.Duration
	lastWall time.Time
}

// Report probes every component. NATS down is unhealthy; Redis or
// langextract down is degraded; each comes with its warning.
func (c *Checker) Report(ctx context.Context) Report {
	r := c.Assess(ctx)
	r.UptimeSeconds = round(time.Since(c.Start).Seconds(), 1)
	r.MemoryUsageMB = round(float64(rss())/(1<<20), 1)
	r.CPUUsagePercent = round(c.cpuPercent(), 1)
	return r
}

// Assess is Report without the process figures (uptime, memory, CPU): the
// status, components, warnings and classes. It takes no CPU sample, so
// asking it often (the console's status polls) leaves /health's CPU
// figure, measured since the previous report, as it was.
func (c *Checker) Assess(ctx context.Context) Report {
	r := Report{Status: Healthy, Timestamp: time.Now().UTC().Format(time.RFC3339), Version: c.Version,
		Components: map[string]string{}, Warnings: []string{}}
	if c.Classes != nil {
		r.Classes = c.Classes()
	}
	nats := c.NATS == nil || c.NATS()
	r.Components["nats"] = status(nats)
	if !nats {
		r.Status = Unhealthy
		r.Warnings = append(r.Warnings, WarnNATS)
	}
	// A missing stream (the results', say) stops every job short of its
	// answer while the connection looks fine: unhealthy, with its name.
	r.Components["streams"] = Healthy
	if !nats {
		// Not known without NATS: not reported as found.
		r.Components["streams"] = Unhealthy
	} else if c.Streams != nil {
		if missing := c.Streams(); len(missing) > 0 {
			r.Components["streams"] = Unhealthy
			r.Status = Unhealthy
			r.Warnings = append(r.Warnings, WarnStreams+strings.Join(missing, ", "))
		}
	}
	le := Healthy
	if c.Langextract != nil {
		le = c.Langextract(ctx)
	}
	r.Components["langextract_client"] = le
	if le != Healthy {
		r.Warnings = append(r.Warnings, WarnLangextract)
	}
	r.Components["redis"] = Disabled
	redisDown := false
	if c.Redis != nil {
		if enabled, up := c.Redis(); enabled {
			r.Components["redis"] = status(up)
			if !up {
				redisDown = true
				r.Warnings = append(r.Warnings, WarnRedis)
			}
		}
	}
	r.Components["semantic_cache"] = Healthy
	if c.Cache != nil {
		r.Components["semantic_cache"] = c.Cache()
	}
	if r.Status == Healthy && (le != Healthy || redisDown || r.Components["semantic_cache"] != Healthy) {
		r.Status = Degraded
	}
	return r
}

func status(ok bool) string {
	if ok {
		return Healthy
	}
	return Unhealthy
}

func round(v float64, places int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return p
}

// cpuPercent is the process's CPU use since the previous report (or start).
func (c *Checker) cpuPercent() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	prevCPU, prevWall := c.lastCPU, c.lastWall
	if prevWall.IsZero() {
		prevWall = c.Start
	}
	c.lastCPU, c.lastWall = cpu, now
	wall := now.Sub(prevWall)
	if wall <= 0 {
		return 0
	}
	return float64(cpu-prevCPU) / float64(wall) * 100
}

// rss is the resident set size, from /proc where there is one.
func rss() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys
}

// Text renders r as the "System Health Report"
// (docs/operations.md#worker-health).
func Text(r Report) string {
	var b strings.Builder
	b.WriteString("=== System Health Report ===\n")
	names := make([]string, 0, len(r.Components))
	for n := range r.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := r.Components[n]
		mark := "✅ HEALTHY"
		switch st {
		case Healthy:
		case Disabled:
			mark = "➖ DISABLED"
		case Degraded:
			mark = "⚠️ DEGRADED"
		default:
			mark = "❌ UNHEALTHY"
		}
		fmt.Fprintf(&b, "%s: %s\n", strings.ToUpper(n), mark)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "WARNING: %s\n", w)
	}
	overall := "✅ ALL SYSTEMS OPERATIONAL"
	switch r.Status {
	case Degraded:
		overall = "⚠️ DEGRADED"
	case Unhealthy:
		overall = "❌ UNHEALTHY"
	case Healthy:
	default:
		overall = "❌ " + strings.ToUpper(r.Status)
	}
	fmt.Fprintf(&b, "\nOVERALL: %s\n", overall)
	fmt.Fprintf(&b, "version %s, up %.0fs, memory %.1f MB, cpu %.1f%%\n", r.Version, r.UptimeSeconds, r.MemoryUsageMB, r.CPUUsagePercent)
	return b.String()
}
