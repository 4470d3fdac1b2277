package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCapacityUnreachableFails: a Prometheus that does not answer is an
// error and a non-zero exit, not an empty report.
func TestCapacityUnreachableFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	out, err := run(t, "capacity", "--prometheus-url", url)
	if err == nil || !strings.Contains(out, "prometheus unreachable at "+url) {
		t.Fatalf("capacity against a closed port: err %v, output:\n%s", err, out)
	}
}

// TestCapacityNoDataIsAReport: a Prometheus without the workers' series
// answers every query with nothing; the command still prints the tables,
// with "no data", and --out writes the JSON report.
func TestCapacityNoDataIsAReport(t *testing.T) {
	var queries atomic.Int64
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		queries.Add(1)
		typ := map[string]string{"/api/v1/query": "vector", "/api/v1/query_range": "matrix"}[r.URL.Path]
		if typ == "" {
			http.NotFound(w, r)
			return
		}
		result := "[]"
		if r.Form.Get("query") == "vector(1)" {
			result = fmt.Sprintf(`[{"metric":{},"value":[%s,"1"]}]`, r.Form.Get("time"))
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":%q,"result":%s}}`, typ, result)
	}))
	defer prom.Close()

	file := filepath.Join(t.TempDir(), "capacity.json")
	out, err := run(t, "capacity", "--prometheus-url", prom.URL, "--window", "7d", "--target-rate", "50", "--out", file)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"window, step, rate interval  1w, 15m, 15m", "no data", "workers for 50 jobs/s ×1.3", "RECOMMENDATIONS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		WindowSeconds float64         `json:"window_seconds"`
		Workers       json.RawMessage `json:"workers"`
		Plan          struct {
			TargetRate float64 `json:"target_rate"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("--out: %v\n%s", err, data)
	}
	if rep.WindowSeconds != 7*24*3600 || string(rep.Workers) != "null" || rep.Plan.TargetRate != 50 {
		t.Errorf("--out JSON: %s", data)
	}
	if queries.Load() < 10 {
		t.Errorf("%d queries reached Prometheus", queries.Load())
	}

	if out, err := run(t, "capacity", "--prometheus-url", prom.URL, "--window", "thirty days"); err == nil {
		t.Errorf("a bad --window was accepted:\n%s", out)
	}
}
