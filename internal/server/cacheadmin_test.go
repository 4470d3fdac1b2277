package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/semcache"
)

// The cache report and export over HTTP, and the export warming a second
// worker through SEMANTIC_CACHE_WARM_FILE: after a restore or on a new
// worker, the texts analysed before answer from memory with no analysis.
func TestCacheReportExportAndWarmFile(t *testing.T) {
	h := newHarness(t, nil)
	base := "http://" + h.srv.HTTPAddr()
	for i := range 5 {
		id := fmt.Sprintf("cr-%d", i)
		h.publish("default", wire(id, fmt.Sprintf("Implement OAuth2 login %d", i), "Build user authentication", 0.5))
		h.wait(10*time.Second, id)
	}
	get(t, base+"/admin/cache/report", "", 401)
	var rep semcache.Report
	if err := json.Unmarshal([]byte(get(t, base+"/admin/cache/report", "s3cret", 200)), &rep); err != nil {
		t.Fatal(err)
	}
	// Six texts analysed (five tasks, one shared pattern), four pattern hits.
	if rep.Misses != 6 || rep.MemoryHits != 4 || len(rep.AgeAtHitSeconds) != len(semcache.AgeBounds)+1 || len(rep.Recommendation) == 0 {
		t.Fatalf("report %+v", rep)
	}
	text := get(t, base+"/admin/cache/report?format=text", "s3cret", 200)
	for _, want := range []string{"by tier", "age up to", "reused (hits)", "recommendation: keep: only 10 lookups"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	export := get(t, base+"/admin/cache/export", "s3cret", 200)
	var qs []map[string]string
	if err := json.Unmarshal([]byte(export), &qs); err != nil || len(qs) != 6 || qs[0]["language"] != "en" || qs[0]["context"] != "pattern_matching" {
		t.Fatalf("export %s (%v)", export, err)
	}
	h.stop()

	warm := filepath.Join(t.TempDir(), "warm.json")
	if err := os.WriteFile(warm, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := h.le.Calls()
	h.start(func(c *config.Config) { c.SemanticCacheWarmFile = warm })
	base = "http://" + h.srv.HTTPAddr()
	if got := h.le.Calls() - calls; got != 6 {
		t.Fatalf("warming made %d analyses, want 6", got)
	}
	h.publish("default", wire("cr-again", "Implement OAuth2 login 3", "Build user authentication", 0.5))
	if r := h.wait(10*time.Second, "cr-again")["cr-again"]; r.Status != "scored" {
		t.Fatalf("result %+v", r)
	}
	if got := h.le.Calls() - calls; got != 6 {
		t.Fatalf("a job on warmed texts made %d more analyses", got-6)
	}
	// The export is also what the warm endpoint takes.
	body := post(t, base+"/admin/cache/warm", "s3cret", export, 200)
	if !strings.Contains(body, `"cached": 6`) {
		t.Fatalf("warm answered %s", body)
	}
}
