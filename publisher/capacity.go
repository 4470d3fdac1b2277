package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/model"

	"github.com/hybridscore/hybridscore/internal/capacity"
)

// capacityCmd prints the monthly capacity report from Prometheus.
type capacityCmd struct {
	PrometheusURL   string        `name:"prometheus-url" env:"PROMETHEUS_URL" required:"" help:"Prometheus that scrapes the workers, e.g. http://localhost:9090."`
	Window          string        `default:"30d" help:"How far back to look (PromQL duration: 30d, 1w, 12h)."`
	End             string        `help:"End of the window, RFC 3339; default now."`
	Step            string        `help:"Resolution of the range queries; default from the window (1h for 30d)."`
	RateInterval    string        `name:"rate-interval" help:"Range of each rate(); default the step, at least 1m. Peaks are the highest of these averages."`
	Job             string        `default:"hybridscore" help:"Scrape job of the workers (the job label of up)."`
	TargetRate      float64       `name:"target-rate" help:"Finished jobs per second to size the pool for."`
	Headroom        float64       `default:"1.3" help:"Factor on --target-rate when sizing."`
	SizeUnsaturated bool          `name:"size-unsaturated" help:"Give a worker count even when the workers were not saturated in the window (no backlog lasted): an upper bound, from a per-worker floor."`
	JSON            bool          `name:"json" help:"Print the report as JSON instead of tables."`
	Out             string        `type:"path" help:"Also write the JSON report to this file."`
	Timeout         time.Duration `default:"2m" help:"Give up on Prometheus after this long."`
}

func (c *capacityCmd) Run(ctx context.Context) error {
	o := capacity.Options{Job: c.Job, TargetRate: c.TargetRate, Headroom: c.Headroom, SizeUnsaturated: c.SizeUnsaturated}
	var err error
	if o.Window, err = promDuration("--window", c.Window); err != nil {
		return err
	}
	if o.Step, err = promDuration("--step", c.Step); err != nil {
		return err
	}
	if o.RateInterval, err = promDuration("--rate-interval", c.RateInterval); err != nil {
		return err
	}
	if c.End != "" {
		if o.End, err = time.Parse(time.RFC3339, c.End); err != nil {
			return fmt.Errorf("--end: %w", err)
		}
	}
	if c.TargetRate < 0 || c.Headroom <= 0 {
		return fmt.Errorf("--target-rate must be at least 0 and --headroom above 0")
	}

	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	r, err := capacity.Collect(ctx, c.PrometheusURL, o)
	if err != nil {
		return err
	}

	if c.Out != "" {
		f, err := os.Create(c.Out)
		if err != nil {
			return err
		}
		if err := r.WriteJSON(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", c.Out, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s: %w", c.Out, err)
		}
	}
	if c.JSON {
		return r.WriteJSON(os.Stdout)
	}
	return r.WriteText(os.Stdout)
}

// promDuration parses a PromQL duration (30d, 1h30m); empty is 0.
func promDuration(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flag, err)
	}
	return time.Duration(d), nil
}
