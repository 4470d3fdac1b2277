package server

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/semcache"
)

// ServiceName is the name every worker registers under with the NATS
// service API: `nats micro ls` and `nats micro stats hybridscore` list them.
const ServiceName = "hybridscore"

// The worker's service endpoints. Each worker serves them on its own
// subjects (EndpointSubject), so a request reaches the worker it names and
// not whichever member of a queue group answers first.
const (
	EndpointStatus       = "status"
	EndpointBreakerReset = "breaker.reset"
	EndpointCacheReport  = "cache.report"
)

// Service metadata keys: the worker's raw version (the service's own version
// must be semantic), its WORKER_ID and when it started.
const (
	MetaVersion  = "version"
	MetaWorkerID = "worker_id"
	MetaStarted  = "started"
)

// EndpointSubject is the subject endpoint is served on by the worker whose
// service id is id: $SRV.hybridscore.<id>.<endpoint>, under the $SRV.>
// permission deployments/nats/nats.conf gives the operator alone.
func EndpointSubject(id, endpoint string) string {
	return "$SRV." + ServiceName + "." + id + "." + endpoint
}

// Status is the status endpoint's answer: what the worker's /health, /metrics
// and /admin/cache say, in one reply.
type Status struct {
	WorkerID      string                  `json:"worker_id"`
	Version       string                  `json:"version"`
	Started       time.Time               `json:"started"`
	UptimeSeconds float64                 `json:"uptime_seconds"`
	Ready         bool                    `json:"ready"`
	Draining      bool                    `json:"draining"`
	InFlight      int64                   `json:"in_flight"`
	Breaker       string                  `json:"breaker"`
	Cache         semcache.Metrics        `json:"cache"`
	Classes       map[string]health.Class `json:"classes"`
	// Health and Warnings are the worker's /health status (healthy,
	// degraded, unhealthy) and warnings.
	Health   string   `json:"health"`
	Warnings []string `json:"warnings"`
}

// BreakerReply is the breaker.reset endpoint's answer.
type BreakerReply struct {
	Status string `json:"status"`
	State  string `json:"state"`
}

// ServiceVersion turns a build's version (a tag, git describe's output, or
// "dev") into the semantic version the service API demands; the raw one is
// in the metadata (MetaVersion).
func ServiceVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if semver.MatchString(v) {
		return v
	}
	parts := strings.FieldsFunc(v, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-')
	})
	if len(parts) == 0 {
		return "0.0.0"
	}
	return "0.0.0+" + strings.Join(parts, ".")
}

// semver is micro's own check (semver.org's expression).
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// startService registers the worker with the NATS service API. Stop it
// before the connection drains.
func (s *Server) startService(started time.Time) (micro.Service, error) {
	svc, err := micro.AddService(s.nc, micro.Config{
		Name: ServiceName, Version: ServiceVersion(Version),
		Description: "hybridscore worker: scores pattern/task similarity jobs",
		Metadata: map[string]string{MetaVersion: Version, MetaWorkerID: s.cfg.WorkerID,
			MetaStarted: started.UTC().Format(time.RFC3339)},
		// Every worker answers its own subjects: no queue group to share.
		QueueGroupDisabled: true,
	})
	if err != nil {
		return nil, fmt.Errorf("NATS service API: %w", err)
	}
	id := svc.Info().ID
	endpoints := []struct {
		name, endpoint string
		h              micro.HandlerFunc
	}{
		{"status", EndpointStatus, func(r micro.Request) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			respond(r, s.status(ctx, started))
		}},
		{"breaker-reset", EndpointBreakerReset, func(r micro.Request) {
			if !s.resetBreaker() {
				_ = r.Error("409", "no circuit breaker: the built-in analyzer is in use", nil)
				return
			}
			respond(r, BreakerReply{Status: "reset", State: s.breakerState()})
		}},
		{"cache-report", EndpointCacheReport, func(r micro.Request) { respond(r, s.Cache.Report()) }},
	}
	for _, e := range endpoints {
		if err := svc.AddEndpoint(e.name, e.h, micro.WithEndpointSubject(EndpointSubject(id, e.endpoint))); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("NATS service endpoint %s: %w", e.endpoint, err)
		}
	}
	return svc, nil
}

func respond(r micro.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		_ = r.Error("500", err.Error(), nil)
		return
	}
	_ = r.Respond(b, micro.WithHeaders(micro.Headers(nats.Header{"Content-Type": []string{"application/json"}})))
}

func (s *Server) status(ctx context.Context, started time.Time) Status {
	st := Status{WorkerID: s.cfg.WorkerID, Version: Version, Started: started.UTC(), UptimeSeconds: time.Since(started).Seconds(),
		Ready: s.Ready(), Draining: s.worker.Draining(), InFlight: s.Metrics.InFlightJobs(), Breaker: s.breakerState(),
		Cache: s.Cache.Metrics(), Classes: s.Metrics.Classes()}
	if s.checker != nil {
		rep := s.checker.Assess(ctx)
		st.Health, st.Warnings = rep.Status, rep.Warnings
	}
	return st
}

// resetBreaker closes the breaker; false with the built-in analyzer, which
// has none.
func (s *Server) resetBreaker() bool {
	if s.breaker == nil {
		return false
	}
	s.breaker.Reset()
	return true
}

func (s *Server) breakerState() string {
	if s.breaker == nil {
		return "none (built-in analyzer)"
	}
	return s.breaker.State().String()
}
