package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/pkg/job"
)

func TestWarmFileBeforeConsuming(t *testing.T) {
	file := filepath.Join(t.TempDir(), "warm.txt")
	_ = os.WriteFile(file, []byte("warm task one\nwarm pattern two\n\nwarm three\n"), 0o644)
	h := newHarness(t, func(c *config.Config) { c.SemanticCacheWarmFile = file })
	// Ready only after warming: the texts are already analysed.
	if h.le.Calls() != 3 {
		t.Fatalf("%d langextract calls at readiness, want 3", h.le.Calls())
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(get(t, "http://"+h.srv.HTTPAddr()+"/admin/cache", "s3cret", 200)), &m)
	if m["current_size"] != 3.0 {
		t.Fatalf("cache %v", m)
	}
	h.publish("default", wire("warm-1", "warm task one", "warm pattern two", 0.5))
	if r := h.wait(10*time.Second, "warm-1")["warm-1"]; r.Cache.Task != "memory" || r.Cache.Pattern != "memory" {
		t.Fatalf("cache %+v", r.Cache)
	}
}

func TestJobLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := newHarnessLog(t, nil, zap.New(core))
	w := wire("log-1", "SECRET TASK TEXT", "SECRET PATTERN TEXT", 0.5)
	w.CorrelationID = "corr-log"
	h.publish("default", w)
	h.wait(10*time.Second, "log-1")
	h.le.SetFaults(langextractd.Faults{Rate503: 1})
	h.publish("default", wire("log-2", "another text", "another pattern", 0.5))
	h.publishRaw("default", "log-3", []byte("{"))
	h.wait(10*time.Second, "log-1", "log-2", "log-3")
	// A job's line may follow its result by a moment.
	eventually.NoError(t, 5*time.Second, func() error {
		var done, degraded, rejected bool
		for _, e := range logs.All() {
			f := e.ContextMap()
			for _, v := range f {
				if s, ok := v.(string); ok && strings.Contains(s, "SECRET") {
					t.Fatalf("job text logged: %v", e)
				}
			}
			switch {
			case e.Message == "job done" && f["job_id"] == "log-1":
				done = e.Level == zapcore.DebugLevel && f["correlation_id"] == "corr-log" && f["lane"] == "default" && f["status"] == job.StatusScored && f["latency_ms"] != nil
			case e.Message == "degraded" && f["job_id"] == "log-2":
				degraded = e.Level == zapcore.WarnLevel && f["fallback_reason"] == "unavailable"
			case e.Message == "rejected" && f["job_id"] == "log-3":
				rejected = e.Level == zapcore.WarnLevel && f["code"] == job.CodeInvalidJSON
			}
		}
		if !done || !degraded || !rejected {
			return fmt.Errorf("done %v degraded %v rejected %v", done, degraded, rejected)
		}
		return nil
	}, "the three jobs' log lines")
}
