package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// What the worker provisions is what it believes, for defaults and for
// the values that mean "unlimited".
func TestProvisionedEqualsBelieved(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxDeliver int
		ackWait    time.Duration
	}{
		{"defaults", 0, 0},
		{"unlimited deliveries", -1, 7 * time.Second},
		{"two deliveries", 2, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := workertest.NATS(t)
			s, _ := workertest.Worker(t, ns.URL(), func(c *config.Config) {
				if tc.maxDeliver != 0 {
					c.MaxDeliver = tc.maxDeliver
				}
				if tc.ackWait != 0 {
					c.AckWait = tc.ackWait
				}
			})
			h := newClient(t, ns.URL())
			cons, err := h.JS.Consumer(context.Background(), topology.JobsStream, topology.Consumer)
			if err != nil {
				t.Fatal(err)
			}
			got := cons.CachedInfo().Config
			believed := s.WorkerConfig()
			if got.MaxDeliver != believed.MaxDeliver || got.AckWait != believed.AckWait {
				t.Fatalf("provisioned MaxDeliver %d AckWait %s, worker believes %d and %s", got.MaxDeliver, got.AckWait, believed.MaxDeliver, believed.AckWait)
			}
			d := config.Defaults()
			wantMD, wantAW := d.MaxDeliver, d.AckWait
			if tc.maxDeliver != 0 {
				wantMD = tc.maxDeliver
			}
			if tc.ackWait != 0 {
				wantAW = tc.ackWait
			}
			if got.MaxDeliver != wantMD || got.AckWait != wantAW {
				t.Fatalf("provisioned MaxDeliver %d AckWait %s, configured %d and %s", got.MaxDeliver, got.AckWait, wantMD, wantAW)
			}
			if believed.Concurrency != d.WorkerConcurrency || believed.Prefetch != d.WorkerPrefetch || believed.DrainTimeout != d.DrainTimeout {
				t.Fatalf("worker runs %+v, configuration defaults %+v", believed, d)
			}
		})
	}
	// The packages' own zero values take the configuration's defaults.
	d, topo := config.Defaults(), topology.Config{}.Defaults()
	if topo.MaxDeliver != d.MaxDeliver || topo.AckWait != d.AckWait || topo.DuplicateWindow != d.DuplicateWindow ||
		topo.ResultsMaxAge != d.ResultsMaxAge || topo.Replicas != d.StreamReplicas {
		t.Fatalf("topology defaults %+v differ from the configuration's %+v", topo, d)
	}
	if (topology.Config{MaxDeliver: -1}).Defaults().MaxDeliver != -1 {
		t.Fatal("topology does not keep -1 (unlimited)")
	}
}

func newClient(t *testing.T, url string) *producer.Client {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := producer.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
