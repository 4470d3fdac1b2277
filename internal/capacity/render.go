package capacity

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"
)

// noData stands for a series Prometheus had no samples of.
const noData = "no data"

// WriteJSON writes the report as indented JSON; missing figures are null.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as aligned tables, a missing figure as
// "no data".
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	p("Capacity report\t%s → %s", r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339))
	p("prometheus\t%s", r.Prometheus)
	p("window, step, rate interval\t%s, %s, %s", dur(r.WindowSeconds), dur(r.StepSeconds), dur(r.RateIntervalSeconds))
	p("")

	p("JOBS FINISHED/S\tAVG\tPEAK\tPEAK AT\tP95 (WINDOW)\tP95 (WORST STEP)")
	for _, c := range append(slices.Clone(r.Classes), r.All) {
		jobs := noData + "\t\t"
		if c.Jobs != nil {
			jobs = fmt.Sprintf("%s\t%s\t%s", num(c.Jobs.Avg), num(c.Jobs.Peak), stamp(c.Jobs.PeakAt))
		}
		p("%s\t%s\t%s\t%s", c.Name, jobs, latency(c.P95), latency(c.P95Worst))
	}
	p("")

	p("BY STATUS (scoring_jobs_total)\tAVG/S\tPEAK/S")
	if len(r.Statuses) == 0 {
		p("-\t%s", noData)
	}
	for _, s := range slices.Sorted(maps.Keys(r.Statuses)) {
		p("%s\t%s\t%s", s, num(r.Statuses[s].Avg), num(r.Statuses[s].Peak))
	}
	p("")

	p("BACKLOG (scoring_consumer_pending)\tFIRST\tLAST\tMAX\tSLOPE/H\tOLDEST JOB AGE MAX")
	for _, c := range r.Classes {
		b := noData + "\t\t\t"
		if c.Backlog != nil {
			b = fmt.Sprintf("%s\t%s\t%s\t%s", num(c.Backlog.First), num(c.Backlog.Last), num(c.Backlog.Max), signed(c.Backlog.SlopePerHour))
		}
		p("%s\t%s\t%s", c.Name, b, latency(c.OldestAgeMax))
	}
	p("")

	p("QUALITY")
	p("fallback rate\t%s", ratio(r.FallbackRate, r.FallbackByReason))
	p("cache hit rate\t%s", ratio(r.CacheHitRate, nil))
	p("")

	p("WORKERS")
	if r.Workers == nil {
		p("workers now\t%s", noData)
	} else {
		p("workers now\t%d  (%s)", r.Workers.Now, r.Workers.Source)
		if r.Workers.PerWorker == nil {
			p("per-worker jobs/s at peak\t%s", noData)
		} else {
			p("per-worker jobs/s at peak\t%s  (%d worker(s) at %s)", num(*r.Workers.PerWorker), r.Workers.AtPeak, stamp(r.Workers.PeakAt))
		}
	}
	if r.Plan != nil {
		need := noData
		switch {
		case r.Plan.Workers > 0 && r.Plan.Unsaturated:
			need = fmt.Sprintf("at most %d  (from a floor: the workers were not saturated)", r.Plan.Workers)
		case r.Plan.Workers > 0:
			need = fmt.Sprint(r.Plan.Workers)
		case r.Plan.Unsaturated:
			need = "none: the workers were not saturated (--size-unsaturated for an upper bound)"
		}
		p("workers for %s jobs/s ×%s\t%s", num(r.Plan.TargetRate), num(r.Plan.Headroom), need)
	}
	p("")

	p("RECOMMENDATIONS")
	for _, line := range r.Recommendations {
		p("- %s", line)
	}
	if len(r.Recommendations) == 0 {
		p("- none: every figure is within its bound")
	}
	for _, wn := range r.Warnings {
		p("warning: %s", wn)
	}
	return tw.Flush()
}

func latency(s *float64) string {
	if s == nil {
		return noData
	}
	return seconds(*s)
}

func ratio(v *float64, by map[string]float64) string {
	if v == nil {
		return noData
	}
	s := pct(*v)
	if len(by) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(by)) {
			parts = append(parts, k+" "+pct(by[k]))
		}
		s += "  (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// dur writes a duration as PromQL does: 30d, 1h, 1m30s.
func dur(sec float64) string {
	return model.Duration(time.Duration(sec * float64(time.Second))).String()
}
