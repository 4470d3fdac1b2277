package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

func TestLoggerIsJSONAndSampled(t *testing.T) {
	var buf workertest.Buffer
	log, err := server.NewLogger("info", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	for range 10000 {
		log.Warn("degraded", zap.String("fallback_reason", "unavailable"))
	}
	log.Debug("job done") // below the level
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) > 300 || len(lines) < 100 {
		t.Fatalf("a storm of 10000 identical warnings wrote %d lines", len(lines))
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil || entry["fallback_reason"] != "unavailable" {
		t.Fatalf("not a JSON line: %q", lines[0])
	}
	if _, err := server.NewLogger("loud", "json", &buf); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("bad level: %v", err)
	}
}
