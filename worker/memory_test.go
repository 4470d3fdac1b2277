package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// peakRSS reads a process's peak resident set (VmHWM), bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// A thousand jobs of 1 MiB through a worker with the default settings: its
// peak resident set stays within 2 × (held bytes + cache bytes) + 50 MB,
// the bound docs/operations.md states, with the soft memory limit the
// worker derives from them.
func TestPeakMemoryWithinTheStatedBound(t *testing.T) {
	c := newCluster(t)
	d := config.Defaults()
	// The defaults, where startWorker sets others for its shorter tests.
	w := startWorker(t, c.ns.URL(), c.leURL, "ACK_WAIT="+d.AckWait.String(), "WORKER_CONCURRENCY="+strconv.Itoa(d.WorkerConcurrency),
		"WORKER_DRAIN_TIMEOUT="+d.DrainTimeout.String())
	const n = 1000
	text := strings.Repeat("x", 1<<20-256)
	for i := range n {
		data, _ := json.Marshal(job.Wire{JobID: fmt.Sprintf("mem-%04d", i), TaskDescription: text, HistoricalPatternText: "p", VectorSimilarity: 0.5})
		if _, err := c.client.JS.PublishMsgAsync(&nats.Msg{Subject: topology.JobsPrefix + "mem", Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprintf("mem-%04d", i)}}}); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			select {
			case <-c.client.JS.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				t.Fatal("PubAcks did not come")
			}
		}
	}
	c.waitSome("mem", n)
	peak := peakRSS(t, w.cmd.Process.Pid)
	held, cache := int64(d.WorkerMaxHeldBytes), d.CacheBytes()
	bound := 2*(held+cache) + 50e6
	t.Logf("peak RSS %.1f MB with %d jobs of 1 MiB; bound 2 × (%d held + %d cache) + 50 MB = %.1f MB; soft limit %.1f MB",
		float64(peak)/1e6, n, held, cache, float64(bound)/1e6, float64(d.MemoryLimit())/1e6)
	if peak > bound {
		t.Fatalf("peak RSS %d bytes above the bound %d", peak, bound)
	}
}

// gomemlimit reads the soft memory limit a worker runs with from its
// /metrics (the Go collector's go_gc_gomemlimit_bytes).
func gomemlimit(t *testing.T, addr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_gc_gomemlimit_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(f)
		}
	}
	t.Fatal("no go_gc_gomemlimit_bytes in /metrics")
	return 0
}

// The soft memory limit is derived from the held bytes and the cache size,
// and an explicit GOMEMLIMIT wins over it.
func TestMemoryLimitDerivedAndOverridable(t *testing.T) {
	c := newCluster(t)
	d := config.Defaults()
	d.WorkerMaxHeldBytes = 32 << 20
	d.SemanticCacheMaxSize = 5000
	w := startWorker(t, c.ns.URL(), c.leURL, "WORKER_MAX_HELD_BYTES=33554432", "SEMANTIC_CACHE_MAX_SIZE=5000")
	if got := gomemlimit(t, w.addr); got != d.MemoryLimit() {
		t.Errorf("soft memory limit %d, want %d", got, d.MemoryLimit())
	}
	w = startWorker(t, c.ns.URL(), c.leURL, "GOMEMLIMIT=300MiB")
	if got := gomemlimit(t, w.addr); got != 300<<20 {
		t.Errorf("soft memory limit %d with GOMEMLIMIT=300MiB", got)
	}
}
