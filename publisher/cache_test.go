package main_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

// cache report, export and warm against real workers: the export of one
// worker warms another, whose report then shows the texts in memory.
func TestCacheCommands(t *testing.T) {
	ns := workertest.NATS(t)
	token := func(c *config.Config) { c.AdminToken = "cache-test-token" }
	w1, _ := workertest.Worker(t, ns.URL(), token)
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs.jsonl")
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, `{"task_description":"cache task %d","historical_pattern_text":"cache pattern %d","vector_similarity":0.5}`+"\n", i, i%4)
	}
	_ = os.WriteFile(jobs, []byte(b.String()), 0o644)
	if out, err := run(t, "batch", jobs, "--nats-url", ns.URL(), "--out", filepath.Join(dir, "results.jsonl"), "--no-progress"); err != nil {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	url1 := "http://" + w1.HTTPAddr()
	out, err := run(t, "cache", "report", "--url", url1, "--token", "cache-test-token")
	if err != nil || !regexp.MustCompile(`lookups +40, hit rate 40.0%`).MatchString(out) || !strings.Contains(out, "recommendation: keep: only 40 lookups") {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if out, err := run(t, "cache", "report", "--url", url1, "--token", "wrong"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("a wrong token: %v\n%s", err, out)
	}
	warm := filepath.Join(dir, "warm.json")
	if out, err := run(t, "cache", "export", "--url", url1, "--token", "cache-test-token", "-o", warm); err != nil || !strings.Contains(out, "exported 24 texts") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	// To standard output, as from a container: the file's bytes only.
	cmd := exec.Command(bin, "cache", "export", "--url", url1, "--token", "cache-test-token", "-o", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "exported 24 texts") {
		t.Fatalf("export to stdout: %v\n%s", err, stderr.String())
	}
	if f, _ := os.ReadFile(warm); !bytes.Equal(stdout.Bytes(), f) {
		t.Fatalf("export to stdout differs from the file:\n%s", stdout.Bytes())
	}
	w2, _ := workertest.Worker(t, ns.URL(), token)
	url2 := "http://" + w2.HTTPAddr()
	if out, err := run(t, "cache", "warm", warm, "--url", url2, "--token", "cache-test-token"); err != nil || !strings.Contains(out, "warmed: 24 texts cached") {
		t.Fatalf("warm: %v\n%s", err, out)
	}
	out, err = run(t, "cache", "report", "--url", url2, "--token", "cache-test-token", "--json")
	if err != nil || !strings.Contains(out, `"current_size": 24`) {
		t.Fatalf("report after warming: %v\n%s", err, out)
	}
}
