package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// healthSays waits until /health reports status, with the streams
// component as given.
func healthSays(t *testing.T, h *harness, status, streams, warning string) {
	t.Helper()
	eventually.NoError(t, 30*time.Second, func() error {
		r := getHealth(t, h)
		found := warning == ""
		for _, w := range r.Warnings {
			found = found || strings.Contains(w, warning)
		}
		if r.Status != status || r.Components["streams"] != streams || !found {
			return fmt.Errorf("status %s, streams %s, warnings %v", r.Status, r.Components["streams"], r.Warnings)
		}
		return nil
	}, "/health %s, streams %s", status, streams)
}

// A results stream deleted under a worker that may not provision: /health
// says unhealthy and names it; once an operator creates it again, healthy.
func TestMissingResultsStreamIsReported(t *testing.T) {
	h := newHarness(t, nil) // provisions the topology
	h.stop()
	h.start(func(c *config.Config) { c.Provision = false })
	healthSays(t, h, health.Healthy, health.Healthy, "")
	ctx := context.Background()
	if err := h.client.JS.DeleteStream(ctx, topology.ResultsStream); err != nil {
		t.Fatal(err)
	}
	healthSays(t, h, health.Unhealthy, health.Unhealthy, topology.ResultsStream)
	get(t, "http://"+h.srv.HTTPAddr()+"/health", "", 503)
	// Provisioning is off: the worker does not create it.
	if _, err := h.client.JS.Stream(ctx, topology.ResultsStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("SCORING_RESULTS with provisioning off: %v", err)
	}
	if _, err := topology.Provision(ctx, h.client.JS, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	healthSays(t, h, health.Healthy, health.Healthy, "")
}

// With provisioning on, a deleted results stream is created again while
// the worker runs, and jobs get their results stored in it; the worker
// warns, naming it, since the results stored before are gone.
func TestMissingResultsStreamIsProvisionedAgain(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := newHarnessLog(t, nil, zap.New(core))
	ctx := context.Background()
	if err := h.client.JS.DeleteStream(ctx, topology.ResultsStream); err != nil {
		t.Fatal(err)
	}
	h.publish("reprov", wire("reprov-1", "Implement OAuth2 login", "Add OAuth2 to the API", 0.5))
	eventually.NoError(t, 30*time.Second, func() error {
		s, err := h.client.JS.Stream(ctx, topology.ResultsStream)
		if err != nil {
			return err
		}
		if n := s.CachedInfo().State.Msgs; n == 0 {
			return fmt.Errorf("%d results stored", n)
		}
		return nil
	}, "SCORING_RESULTS provisioned again, holding the job's result")
	healthSays(t, h, health.Healthy, health.Healthy, "")
	warned := logs.FilterMessageSnippet("created again").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warned) != 1 || !slices.Equal(warned[0].ContextMap()["streams"].([]any), []any{topology.ResultsStream}) {
		t.Fatalf("warnings that streams were created again: %v", warned)
	}
}

// A bulk stream deleted under a running worker is created again at once by
// the bulk puller's rebind (before the stream watch's next look), and the
// worker warns all the same: its bulk jobs are gone.
func TestDeletedStreamCreatedAgainByARebindIsReported(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := newHarnessLog(t, nil, zap.New(core))
	ctx := context.Background()
	if err := h.client.JS.DeleteStream(ctx, topology.BulkStream); err != nil {
		t.Fatal(err)
	}
	eventually.NoError(t, 20*time.Second, func() error {
		for _, e := range logs.FilterMessageSnippet("created again").FilterLevelExact(zapcore.WarnLevel).All() {
			if slices.Contains(e.ContextMap()["streams"].([]any), any(topology.BulkStream)) {
				return nil
			}
		}
		return fmt.Errorf("no warning naming %s: %v", topology.BulkStream, logs.All())
	}, "a warning that SCORING_BULK was created again")
	if _, err := h.client.JS.Stream(ctx, topology.BulkStream); err != nil {
		t.Fatalf("SCORING_BULK after the warning: %v", err)
	}
}
