package main

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hybridscore/hybridscore/internal/smoke"
)

// smokeCmd checks a running deployment end to end (internal/smoke,
// docs/operations.md#smoke-test).
type smokeCmd struct {
	natsFlags
	workerURL
	// The names before --worker-url, one per check; they still override it
	// and are not shown.
	HealthURL    string        `name:"health-url" hidden:"" help:"A worker's HTTP address or /health URL (default: --worker-url)."`
	MetricsURL   string        `name:"metrics-url" hidden:"" help:"A worker's HTTP address or /metrics URL (default: --worker-url)."`
	NoHTTP       bool          `name:"no-http" help:"Skip the /health and /metrics checks (no worker's HTTP port is reachable from here)."`
	Lane         string        `default:"smoke" help:"Lane of the smoke jobs (scoring.jobs.<lane>): keep them apart from production lanes."`
	Timeout      time.Duration `default:"30s" help:"How long to wait for the four results."`
	MaxTextBytes int           `default:"16384" help:"The workers' MAX_TEXT_BYTES: the degraded check's text is this long."`
	DegradedOK   bool          `name:"degraded-ok" help:"Accept a degraded /health (Redis or langextract down) as well as healthy."`
	Version      string        `name:"expect-version" help:"The version /health must report (after an upgrade or a rollback)."`
	JSON         bool          `name:"json" help:"Print the report as JSON instead of a table."`
}

func (s *smokeCmd) Run(ctx context.Context) error {
	health, metrics := cmp.Or(s.HealthURL, s.WorkerURL), cmp.Or(s.MetricsURL, s.WorkerURL)
	if s.NoHTTP {
		health, metrics = "", ""
	}
	rep, err := smoke.Run(ctx, smoke.Options{
		Connect: func(context.Context) (*nats.Conn, error) {
			c, err := s.connect()
			if err != nil {
				return nil, err
			}
			return c.NC, nil
		},
		HealthURL: health, MetricsURL: metrics, Lane: s.Lane, Timeout: s.Timeout,
		MaxTextBytes: s.MaxTextBytes, DegradedOK: s.DegradedOK, Version: s.Version,
	})
	if err != nil {
		return err
	}
	if s.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		return err
	}
	return rep.Err()
}
