package prometheus_test

// TestLivePrometheus checks the alert rules and the Grafana dashboard against
// a real Prometheus server (Debian's /usr/bin/prometheus) scraping a live
// worker under load of both job classes (interactive jobs on
// scoring.jobs.default, bulk jobs on scoring.bulk.default), so that every
// class="interactive" and class="bulk" series exists:
//
//  1. the worker's scrape target is up;
//  2. every rule of alerts/hybrid_scoring_alerts.yml is loaded and, evaluated
//     (every 1 s) after the data below exists, has health "ok" and no
//     lastError; a few alert states follow from the load (dead letters fire,
//     the 20% langextract 5xx rate is pending, Redis/worker/breaker alerts
//     stay inactive);
//  3. every dashboard query and every rule expression evaluates through
//     /api/v1/query without error or warning; every dashboard query returns
//     at least one series, and one whose series carry a class label returns
//     both classes; every rule whose result is not filtered by
//     and/unless/absent returns series once its comparisons are turned into
//     "bool" comparisons (so the compared ratio or quantile exists); and every
//     metric selector named in them (with its label matchers) has series;
//  4. no dashboard query or rule names a metric the worker does not export on
//     /metrics ("up" is Prometheus's own).
//
// The worker runs in-process against an embedded NATS server, a real
// redis-server and a fake langextract answering 20% of requests with 500.
// Without prometheus (or redis-server) the test is skipped, unless CI=true
// or REQUIRE_OPS_TOOLS=1 (REQUIRE_REDIS=1 for Redis) demand it.
//
// Run: go test -count=1 -run Live ./deployments/prometheus/

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/redistest"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

const (
	alertRulesPath = "alerts/hybrid_scoring_alerts.yml"
	promConfigPath = "prometheus.yml"
	dashboardPath  = "../grafana/dashboards/hybrid_scoring.json"
	scrapeJob      = "hybridscore"

	// liveDeadline bounds the wait for data and rule evaluations.
	liveDeadline = 60 * time.Second
	pollEvery    = 500 * time.Millisecond
)

func requireOpsTools() bool {
	return os.Getenv("CI") == "true" || os.Getenv("REQUIRE_OPS_TOOLS") == "1"
}

// liveExpr is one PromQL expression under test.
type liveExpr struct {
	Where string // "rule X" or "dashboard panel "T" target A"
	Expr  string
	Rule  bool
}

func TestLivePrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if requireOpsTools() {
			t.Fatalf("prometheus not installed and CI/REQUIRE_OPS_TOOLS demands it: %v", err)
		}
		t.Skip("prometheus not installed (apt-get install prometheus); set REQUIRE_OPS_TOOLS=1 to fail instead")
	}

	// The files under test, read before anything is started.
	rules, rulesCopy := loadRules(t)
	exprs := append(rulesExprs(rules), dashboardExprs(t)...)
	metricsPath := scrapeMetricsPath(t)

	// The live worker: NATS, fake langextract, Redis.
	natsSrv, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(natsSrv.Stop)

	le := langextractd.New(langextractd.Faults{Rate500: 0.2})
	leSrv := httptest.NewServer(le)
	t.Cleanup(func() { le.Close(); leSrv.Close() })

	rs := redistest.Start(t)
	redisHost, redisPort, err := net.SplitHostPort(rs.Addr)
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Defaults()
	cfg.NATSURL = natsSrv.URL()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LangextractURL = leSrv.URL
	cfg.LangextractTimeout = 1
	cfg.CircuitBreakerThreshold = 1000 // 5xx must keep reaching langextract
	cfg.RedisHost = redisHost
	cfg.RedisPort, _ = strconv.Atoi(redisPort)
	cfg.DrainTimeout = 2 * time.Second
	cfg.LogLevel = "error"
	wctx, stopWorker := context.WithCancel(context.Background())
	worker, err := server.New(wctx, cfg, zap.NewNop())
	if err != nil {
		stopWorker()
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- worker.Run(wctx) }()
	t.Cleanup(func() {
		stopWorker()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("worker Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop within 30s")
		}
	})
	workerURL := "http://" + worker.HTTPAddr()

	// Load: ~50 jobs/s until the test ends (one in four a bulk job), plus one
	// invalid job.
	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	client, err := producer.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	var published, publishErrs atomic.Int64
	lctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); generateLoad(lctx, client, &published, &publishErrs) }()
	t.Cleanup(func() {
		stopLoad()
		<-loadDone
		t.Logf("load: %d jobs published, %d publish errors; langextract saw %d requests for %d distinct texts",
			published.Load(), publishErrs.Load(), le.Calls(), le.Distinct())
	})
	{
		pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.JS.Publish(pctx, "scoring.jobs.default", []byte(`{"job_id":"bad"}`))
		cancel()
		if err != nil {
			t.Fatalf("publish the invalid job: %v", err)
		}
	}

	// Prometheus scraping the worker every second, rules evaluated every second.
	dir := t.TempDir()
	promYML := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promYML, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: %q
    metrics_path: %q
    static_configs:
      - targets: [%q]
`, rulesCopy, scrapeJob, metricsPath, worker.HTTPAddr())), 0o600); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	prom := startPrometheus(t, promBin, promYML)
	t.Logf("prometheus ready at %s in %v", prom.base, time.Since(started).Round(time.Millisecond))
	deadline := started.Add(liveDeadline)

	// (1) and (3): poll until the target is up and every query has data.
	sels := uniqueSelectors(exprs)
	var pending, failures []string
	var checked time.Time
	_ = eventually.Wait(time.Until(deadline), func() error {
		// Prometheus scrapes and evaluates once a second: running every
		// query more often than pollEvery would only load the machine.
		if time.Since(checked) < pollEvery {
			return errNotYet
		}
		checked = time.Now()
		if pending, failures = checkQueries(prom, exprs, sels); len(failures) > 0 || len(pending) == 0 {
			return nil
		}
		return errNotYet
	})
	dataReady := time.Now()

	// (4) runs whatever happened above: it explains a metric that never gets
	// series.
	checkExported(t, workerURL+metricsPath, exprs)

	if len(failures) > 0 {
		t.Fatalf("PromQL errors:\n  %s", strings.Join(failures, "\n  "))
	}
	if len(pending) > 0 {
		t.Fatalf("after %v, still waiting for:\n  %s", liveDeadline, strings.Join(pending, "\n  "))
	}
	t.Logf("target up and every query has data after %v", time.Since(started).Round(time.Millisecond))

	// (2): every rule evaluated after the data above existed.
	checkRules(t, prom, rules, dataReady, deadline)
	checkCapacity(t, prom, started)
	t.Logf("%d expressions and %d selectors checked; %d rules evaluated", len(exprs), len(sels), countRules(rules))
}

// ---------------------------------------------------------------- the files

type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Rules    []struct {
		Alert  string `yaml:"alert"`
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	} `yaml:"rules"`
}

func (g ruleGroup) ruleName(i int) string {
	if g.Rules[i].Alert != "" {
		return g.Rules[i].Alert
	}
	return g.Rules[i].Record
}

func countRules(f ruleFile) int {
	n := 0
	for _, g := range f.Groups {
		n += len(g.Rules)
	}
	return n
}

var groupInterval = regexp.MustCompile(`(?m)^(\s+interval:\s*)\S+[ \t]*$`)

// loadRules parses the alert rules and writes a copy whose group intervals
// are 1s, returning the parsed rules and the copy's path.
func loadRules(t *testing.T) (ruleFile, string) {
	t.Helper()
	data, err := os.ReadFile(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", alertRulesPath, err)
	}
	if countRules(f) == 0 {
		t.Fatalf("%s: no rules", alertRulesPath)
	}
	fast := groupInterval.ReplaceAll(data, []byte("${1}1s"))
	var check ruleFile
	if err := yaml.Unmarshal(fast, &check); err != nil {
		t.Fatalf("rewritten %s: %v", alertRulesPath, err)
	}
	for i, g := range check.Groups {
		if g.Interval != "" && g.Interval != "1s" {
			t.Fatalf("rewriting group %s interval: got %q", g.Name, g.Interval)
		}
		if len(g.Rules) != len(f.Groups[i].Rules) {
			t.Fatalf("rewriting group %s changed its rules", g.Name)
		}
	}
	path := filepath.Join(t.TempDir(), filepath.Base(alertRulesPath))
	if err := os.WriteFile(path, fast, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, path
}

func rulesExprs(f ruleFile) []liveExpr {
	var out []liveExpr
	for _, g := range f.Groups {
		for i, r := range g.Rules {
			out = append(out, liveExpr{Where: "rule " + g.ruleName(i), Expr: strings.TrimSpace(r.Expr), Rule: true})
		}
	}
	return out
}

// Grafana's interval variables; any other "$" is a template variable the
// test cannot evaluate.
var grafanaInterval = regexp.MustCompile(`\$\{?__(?:rate_interval|interval|range)(?::[a-z]+)?\}?`)

func dashboardExprs(t *testing.T) []liveExpr {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	type panel struct {
		Title   string            `json:"title"`
		Panels  []json.RawMessage `json:"panels"` // rows
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	}
	var out []liveExpr
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: panel: %v", dashboardPath, err)
			}
			walk(p.Panels)
			for _, tg := range p.Targets {
				where := fmt.Sprintf("dashboard panel %q target %s", p.Title, tg.RefID)
				e := strings.TrimSpace(grafanaInterval.ReplaceAllString(tg.Expr, "1m"))
				if e == "" {
					continue
				}
				if strings.Contains(e, "$") {
					t.Errorf("%s: unsupported Grafana variable in %q", where, tg.Expr)
					continue
				}
				out = append(out, liveExpr{Where: where, Expr: e})
			}
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		t.Fatalf("%s: no targets[].expr", dashboardPath)
	}
	return out
}

// scrapeMetricsPath returns the metrics_path of the "hybridscore" job of the
// deployment's prometheus.yml, the job the rules and dashboard refer to.
func scrapeMetricsPath(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(promConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			MetricsPath string `yaml:"metrics_path"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", promConfigPath, err)
	}
	for _, sc := range c.ScrapeConfigs {
		if sc.JobName == scrapeJob {
			if sc.MetricsPath == "" {
				return "/metrics"
			}
			return sc.MetricsPath
		}
	}
	t.Fatalf("%s: no scrape job %q", promConfigPath, scrapeJob)
	return ""
}

// ---------------------------------------------------------------- the load

func generateLoad(ctx context.Context, c *producer.Client, published, failed *atomic.Int64) {
	tasks := []string{
		"Implement OAuth2 login with refresh tokens for the web client",
		"Add rate limiting to the public REST API gateway",
		"Refactor the billing service to use the new invoice schema",
		"Write integration tests for the search indexing pipeline",
		"Migrate the session store from Memcached to Redis",
		"Build a CSV export of monthly usage reports",
	}
	patterns := []string{
		"Previously implemented JWT authentication with token rotation in the mobile API",
		"Added a token bucket limiter in front of the internal RPC services",
		"Moved the orders database to a new schema with a zero-downtime migration",
		"Created end-to-end tests for the ingestion workers",
	}
	complexity := []string{"simple", "moderate", "complex"}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w := job.Wire{
			JobID:                 fmt.Sprintf("live-%d", i),
			TaskDescription:       tasks[i%len(tasks)],
			HistoricalPatternText: patterns[i%len(patterns)],
			VectorSimilarity:      0.05 + float64(i%10)/10,
			TaskCharacteristics:   &job.WireCharacteristics{Complexity: complexity[i%len(complexity)]},
		}
		switch {
		case i%5 == 0: // new text, retried after a fallback: redeliveries
			w.TaskDescription = fmt.Sprintf("Investigate the flaky checkout test number %d and fix its race", i)
			w.OnFallback = job.FallbackRetry
		case i%3 == 0: // new texts: cache misses, langextract calls and 5xx
			w.TaskDescription = fmt.Sprintf("Tune the autoscaler of worker pool %d for the nightly batch", i)
			w.HistoricalPatternText = fmt.Sprintf("Resized queue consumer group %d after a backlog incident", i)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		if i%4 == 1 { // bulk: served after interactive jobs, same results
			err = publishBulk(pctx, c, "default", w)
		} else {
			_, err = c.Publish(pctx, "default", w)
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failed.Add(1)
			continue
		}
		published.Add(1)
	}
}

// publishBulk sends one job to scoring.bulk.<lane> (stream SCORING_BULK)
// with Nats-Msg-Id: job_id, as `publisher batch` does by default.
func publishBulk(ctx context.Context, c *producer.Client, lane string, w job.Wire) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	_, err = c.JS.PublishMsg(ctx, &nats.Msg{Subject: topology.BulkPrefix + lane, Data: data,
		Header: nats.Header{jetstream.MsgIDHeader: []string{w.JobID}}})
	return err
}

// ---------------------------------------------------------------- Prometheus

type promAPI struct {
	base string
	hc   *http.Client
}

// startPrometheus starts prometheus with config file cfg on a port of its
// own choosing, read from the "Listening on" line it logs with the bound
// address, and waits for /-/ready.
func startPrometheus(t *testing.T, bin, cfg string) *promAPI {
	t.Helper()
	data := t.TempDir()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+data,
		"--web.listen-address=127.0.0.1:0", "--log.level=info")
	cmd.Dir = data
	out, err := workertest.StartProcess(cmd)
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		<-out.Done()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", out)
		}
	})
	line := out.WaitLine(t, 30*time.Second, `msg="Listening on"`)
	m := listeningOn.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no address in prometheus's line %q", line)
	}
	p := &promAPI{base: "http://" + m[1], hc: &http.Client{Timeout: 5 * time.Second}}
	eventually.NoError(t, 30*time.Second, func() error {
		resp, err := p.hc.Get(p.base + "/-/ready")
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready %d", resp.StatusCode)
		}
		return nil
	}, "prometheus ready at %s", p.base)
	return p
}

// listeningOn finds the bound address in prometheus's "Listening on" line
// (logfmt, 2.x and 3.x alike).
var listeningOn = regexp.MustCompile(`\baddress=([^\s"]+)`)

// errNotYet is a condition not met yet.
var errNotYet = errors.New("not yet")

// apiError is an answer with status "error": a bad expression or a failed
// evaluation, never transient.
type apiError struct{ Type, Msg string }

func (e *apiError) Error() string { return e.Type + ": " + e.Msg }

// call returns the data of an API answer. A transport or HTTP failure
// without an API error body is returned as a plain error (retried).
func (p *promAPI) call(path string, form url.Values) (json.RawMessage, error) {
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = p.hc.Get(p.base + path)
	} else {
		resp, err = p.hc.PostForm(p.base+path, form)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	if r.Status != "success" {
		return nil, &apiError{Type: r.ErrorType, Msg: r.Error}
	}
	if len(r.Warnings) > 0 {
		return nil, &apiError{Type: "warnings", Msg: strings.Join(r.Warnings, "; ")}
	}
	return r.Data, nil
}

// query evaluates expr now and returns how many series (1 for a scalar).
func (p *promAPI) query(expr string) (int, error) {
	n, _, err := p.querySeries(expr)
	return n, err
}

// querySeries evaluates expr now and returns how many series (1 for a
// scalar) and the distinct values of their "class" label.
func (p *promAPI) querySeries(expr string) (int, []string, error) {
	data, err := p.call("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, nil, err
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return 0, nil, err
	}
	switch d.ResultType {
	case "vector", "matrix":
		var series []struct {
			Metric map[string]string `json:"metric"`
		}
		if err := json.Unmarshal(d.Result, &series); err != nil {
			return 0, nil, err
		}
		var classes []string
		for _, s := range series {
			if c, ok := s.Metric["class"]; ok && !slices.Contains(classes, c) {
				classes = append(classes, c)
			}
		}
		sort.Strings(classes)
		return len(series), classes, nil
	default: // scalar, string
		return 1, nil, nil
	}
}

// queryValue returns the value of a one-series instant vector, or -1.
func (p *promAPI) queryValue(expr string) (float64, error) {
	data, err := p.call("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return -1, err
	}
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil || len(d.Result) != 1 {
		return -1, err
	}
	s, _ := d.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// jobClasses are the values of the class label, sorted: a dashboard query
// split by class must show both.
var jobClasses = []string{"bulk", "interactive"}

// checkQueries runs checks (1) and (3) once. pending lists what has no data
// yet; failures lists errors, which waiting will not fix.
func checkQueries(p *promAPI, exprs []liveExpr, sels []selector) (pending, failures []string) {
	fail := func(where, expr string, err error) {
		if _, ok := errors.AsType[*apiError](err); ok {
			failures = append(failures, fmt.Sprintf("%s: %q: %v", where, expr, err))
		} else {
			pending = append(pending, fmt.Sprintf("%s: %q: %v", where, expr, err))
		}
	}

	// (1) The target is up and has been scraped a few times.
	data, err := p.call("/api/v1/targets?state=active", nil)
	if err != nil {
		return []string{"targets: " + err.Error()}, nil
	}
	var targets struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := json.Unmarshal(data, &targets); err != nil {
		return nil, []string{"targets: " + err.Error()}
	}
	up := 0
	for _, tg := range targets.ActiveTargets {
		if tg.Labels["job"] != scrapeJob {
			continue
		}
		if tg.Health == "up" {
			up++
		} else {
			pending = append(pending, fmt.Sprintf("target %s health %q lastError %q", tg.Labels["instance"], tg.Health, tg.LastError))
		}
	}
	if up != 1 {
		pending = append(pending, fmt.Sprintf("want 1 %s target up, have %d", scrapeJob, up))
	}
	samplesExpr := `count_over_time(up{job="` + scrapeJob + `"}[1m])`
	if n, err := p.queryValue(samplesExpr); err != nil {
		fail("scrapes", samplesExpr, err)
	} else if n < 3 {
		pending = append(pending, fmt.Sprintf("%.0f scrapes, want 3", n))
	}

	// (3) Every expression evaluates; dashboard queries and unfiltered rules
	// have series; every selector has series.
	for _, e := range exprs {
		n, classes, err := p.querySeries(e.Expr)
		if err != nil {
			fail(e.Where, e.Expr, err)
			continue
		}
		if !e.Rule {
			if n == 0 {
				pending = append(pending, fmt.Sprintf("%s: %q returns no series", e.Where, e.Expr))
			} else if len(classes) > 0 && !slices.Equal(classes, jobClasses) {
				pending = append(pending, fmt.Sprintf("%s: %q returns classes %v, want %v", e.Where, e.Expr, classes, jobClasses))
			}
			continue
		}
		if filtered(e.Expr) {
			continue
		}
		b := boolify(e.Expr)
		n, err = p.query(b)
		if err != nil {
			fail(e.Where+" (bool comparisons)", b, err)
		} else if n == 0 {
			pending = append(pending, fmt.Sprintf("%s: %q returns no series", e.Where+" (bool comparisons)", b))
		}
	}
	for _, s := range sels {
		n, err := p.query(s.String())
		if err != nil {
			fail("selector in "+strings.Join(s.Where, ", "), s.String(), err)
		} else if n == 0 {
			pending = append(pending, fmt.Sprintf("selector %s (in %s) has no series", s, strings.Join(s.Where, ", ")))
		}
	}
	return pending, failures
}

type apiRule struct {
	Name           string  `json:"name"`
	Query          string  `json:"query"`
	Health         string  `json:"health"`
	LastError      string  `json:"lastError"`
	State          string  `json:"state"`
	Type           string  `json:"type"`
	LastEvaluation string  `json:"lastEvaluation"`
	EvaluationTime float64 `json:"evaluationTime"`
	Alerts         []struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
	} `json:"alerts"`
}

type apiGroup struct {
	Name     string    `json:"name"`
	File     string    `json:"file"`
	Interval float64   `json:"interval"`
	Rules    []apiRule `json:"rules"`
}

// checkRules runs check (2): waits until every rule was evaluated after
// since, then checks health, errors and a few alert states.
func checkRules(t *testing.T, p *promAPI, want ruleFile, since, deadline time.Time) {
	t.Helper()
	var groups []apiGroup
	eventually.NoError(t, time.Until(deadline), func() error {
		data, err := p.call("/api/v1/rules", nil)
		if _, ok := errors.AsType[*apiError](err); ok {
			t.Fatalf("GET /api/v1/rules: %v", err)
		}
		if err != nil {
			return fmt.Errorf("any rule (%w)", err)
		}
		var d struct {
			Groups []apiGroup `json:"groups"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("GET /api/v1/rules: %v", err)
		}
		groups = d.Groups
		if len(groups) == 0 {
			return errors.New("any rule")
		}
		for _, g := range groups {
			for _, r := range g.Rules {
				if at, err := time.Parse(time.RFC3339Nano, r.LastEvaluation); err != nil || !at.After(since) {
					return errors.New(r.Name)
				}
			}
		}
		return nil
	}, "every rule evaluated since %s", since.Format(time.RFC3339Nano))

	// Every group and rule of the file is loaded, and nothing else.
	byName := map[string]apiRule{}
	var loaded []string
	for _, g := range groups {
		if g.Interval != 1 {
			t.Errorf("group %s: interval %vs, want 1s", g.Name, g.Interval)
		}
		for _, r := range g.Rules {
			loaded = append(loaded, g.Name+"/"+r.Name)
			byName[r.Name] = r
		}
	}
	var wantNames []string
	for _, g := range want.Groups {
		for i := range g.Rules {
			wantNames = append(wantNames, g.Name+"/"+g.ruleName(i))
		}
	}
	sort.Strings(loaded)
	sort.Strings(wantNames)
	if !slices.Equal(loaded, wantNames) {
		t.Errorf("Prometheus loaded rules %v, file has %v", loaded, wantNames)
	}

	for _, name := range slices.Sorted(maps.Keys(byName)) {
		r := byName[name]
		if r.Health != "ok" || r.LastError != "" {
			t.Errorf("rule %s: health %q, lastError %q (query %s)", name, r.Health, r.LastError, r.Query)
		}
		t.Logf("rule %-32s health=%s state=%s alerts=%d eval=%.1fms", name, r.Health, r.State, len(r.Alerts), r.EvaluationTime*1000)
	}

	// Alert states the load implies.
	states := map[string][]string{
		"ScoringDeadLetters":            {"firing"},            // the invalid job, no `for`
		"LangextractHighErrorRate":      {"pending", "firing"}, // 20% 5xx > 5%
		"RedisUnavailable":              {"inactive"},
		"HybridscoreNoWorkerUp":         {"inactive"},
		"LangextractCircuitBreakerOpen": {"inactive"},
	}
	for name, ok := range states {
		r, found := byName[name]
		if !found {
			continue // reported above
		}
		if !slices.Contains(ok, r.State) {
			t.Errorf("alert %s is %s, want %s", name, r.State, strings.Join(ok, " or "))
		}
	}
	if r, ok := byName["ScoringDeadLetters"]; ok && r.State == "firing" {
		lanes := []string{}
		for _, a := range r.Alerts {
			lanes = append(lanes, a.Labels["lane"]+"/"+a.Labels["reason"])
		}
		if !slices.ContainsFunc(lanes, func(s string) bool { return strings.HasPrefix(s, "default/") }) {
			t.Errorf("ScoringDeadLetters fires for lane/reason %v, want lane default", lanes)
		} else {
			t.Logf("ScoringDeadLetters fires for lane/reason %v", lanes)
		}
	}
}

// checkExported runs check (4): every metric the expressions name is on the
// worker's /metrics.
func checkExported(t *testing.T, metricsURL string, exprs []liveExpr) {
	t.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Errorf("GET %s: %v", metricsURL, err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: HTTP %d %v", metricsURL, resp.StatusCode, err)
		return
	}
	samples := map[string]bool{}    // sample names: histograms as _bucket, _sum, _count
	families := map[string]string{} // # TYPE name type
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			samples[line[:i]] = true
		}
	}

	used := map[string]bool{}
	var unknown []string
	for _, s := range uniqueSelectors(exprs) {
		family := s.Name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(s.Name, suf); ok && (families[b] == "histogram" || families[b] == "summary") {
				family = b
			}
		}
		used[family] = true
		if s.Name == "up" {
			continue // Prometheus's own
		}
		if !samples[s.Name] {
			kind := "no such metric"
			if typ, ok := families[family]; ok {
				kind = "family " + family + " is a " + typ + " without that series"
			}
			unknown = append(unknown, fmt.Sprintf("%s (%s) in %s", s.Name, kind, strings.Join(s.Where, ", ")))
		}
	}
	if len(unknown) > 0 {
		t.Errorf("metrics named by the rules/dashboard but not exported on %s:\n  %s", metricsURL, strings.Join(unknown, "\n  "))
	}

	var unused []string
	for name := range families {
		if !used[name] && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Logf("exported but in no rule or dashboard query: %s", strings.Join(unused, ", "))
	}
}

// ---------------------------------------------------------------- PromQL

// selector is a metric selector found in an expression: the metric name and
// its label matchers ("" or "{...}"), with the places that use it.
type selector struct {
	Name, Matchers string
	Where          []string
}

func (s selector) String() string { return s.Name + s.Matchers }

var (
	// Keywords that are never metric names.
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"atan2": true, "inf": true, "nan": true}
	// Keywords followed by a list of label names.
	labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true}
)

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1
		}
	}
	return len(s)
}

// skipBalanced returns the index after the bracket opened at i, skipping
// string literals.
func skipBalanced(s string, i int, open, close byte) int {
	depth := 0
	for j := i; j < len(s); {
		switch s[j] {
		case '"', '\'', '`':
			j = skipString(s, j)
			continue
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return len(s)
}

// skipNumber returns the index after a number or duration starting at i
// (5m, 1h30m, 0.95, 1e-6, 0x1f).
func skipNumber(s string, i int) int {
	j := i
	hex := strings.HasPrefix(s[i:], "0x") || strings.HasPrefix(s[i:], "0X")
	for j < len(s) {
		c := s[j]
		switch {
		case isIdentChar(c) && c != ':' || c == '.':
			j++
		case (c == '+' || c == '-') && !hex && j > i && (s[j-1] == 'e' || s[j-1] == 'E'):
			j++
		default:
			return j
		}
	}
	return j
}

func skipSpace(s string, i int) int {
	for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
		i++
	}
	return i
}

func startsWithWord(s, w string) bool {
	return strings.HasPrefix(s, w) && (len(s) == len(w) || !isIdentChar(s[len(w)]))
}

// scan calls ident for every identifier outside strings, label matchers,
// ranges and label lists, with the rest of the expression after it. ident
// returns how far to skip.
func scan(expr string, ident func(word string, start, end int) int) {
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '#':
			if j := strings.IndexByte(expr[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(expr)
			}
		case c == '{':
			i = skipBalanced(expr, i, '{', '}')
		case c == '[':
			i = skipBalanced(expr, i, '[', ']')
		case isDigit(c) || c == '.' && i+1 < len(expr) && isDigit(expr[i+1]):
			i = skipNumber(expr, i)
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			word := expr[i:j]
			if k := skipSpace(expr, j); labelListKeywords[strings.ToLower(word)] && k < len(expr) && expr[k] == '(' {
				i = skipBalanced(expr, k, '(', ')')
				continue
			}
			i = ident(word, i, j)
		default:
			i++
		}
	}
}

// selectors returns the distinct metric selectors of expr: identifiers that
// are not functions, aggregations, keywords or label names.
func selectors(expr string) []selector {
	var out []selector
	scan(expr, func(word string, _, end int) int {
		lw := strings.ToLower(word)
		k := skipSpace(expr, end)
		rest := expr[k:]
		switch {
		case promKeywords[lw] || labelListKeywords[lw]:
		case strings.HasPrefix(rest, "("): // function or aggregation
		case startsWithWord(rest, "by") || startsWithWord(rest, "without"): // sum by (le) (...)
		default:
			s := selector{Name: word}
			if strings.HasPrefix(rest, "{") {
				e := skipBalanced(expr, k, '{', '}')
				s.Matchers = expr[k:e]
				end = e
			}
			if !slices.ContainsFunc(out, func(o selector) bool { return o.String() == s.String() }) {
				out = append(out, s)
			}
		}
		return end
	})
	return out
}

func uniqueSelectors(exprs []liveExpr) []selector {
	idx := map[string]int{}
	var out []selector
	for _, e := range exprs {
		for _, s := range selectors(e.Expr) {
			i, ok := idx[s.String()]
			if !ok {
				i = len(out)
				idx[s.String()] = i
				out = append(out, s)
			}
			if !slices.Contains(out[i].Where, e.Where) {
				out[i].Where = append(out[i].Where, e.Where)
			}
		}
	}
	return out
}

// filtered reports whether expr's result is legitimately empty even with
// data: set operators and absent() remove series whatever the comparisons.
func filtered(expr string) bool {
	found := false
	scan(expr, func(word string, _, end int) int {
		switch strings.ToLower(word) {
		case "and", "unless", "absent", "absent_over_time":
			found = true
		}
		return end
	})
	return found
}

// boolify turns every comparison of expr outside label matchers into a
// "bool" comparison, so that it returns the compared series (as 0 or 1)
// instead of filtering them.
func boolify(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); {
		c := expr[i]
		switch c {
		case '"', '\'', '`':
			j := skipString(expr, i)
			b.WriteString(expr[i:j])
			i = j
			continue
		case '{':
			j := skipBalanced(expr, i, '{', '}')
			b.WriteString(expr[i:j])
			i = j
			continue
		case '[':
			j := skipBalanced(expr, i, '[', ']')
			b.WriteString(expr[i:j])
			i = j
			continue
		}
		op := ""
		if (c == '=' || c == '!' || c == '>' || c == '<') && i+1 < len(expr) && expr[i+1] == '=' {
			op = expr[i : i+2]
		} else if c == '>' || c == '<' {
			op = expr[i : i+1]
		}
		if op == "" {
			b.WriteByte(c)
			i++
			continue
		}
		b.WriteString(op)
		i += len(op)
		if !startsWithWord(expr[skipSpace(expr, i):], "bool") {
			b.WriteString(" bool")
			if skipSpace(expr, i) == i {
				b.WriteByte(' ')
			}
		}
	}
	return b.String()
}

// TestLiveSelectors pins the selector extraction the live test relies on.
func TestLiveSelectors(t *testing.T) {
	cases := map[string][]string{
		`sum by (endpoint, status) (rate(langextract_requests_total[5m]))`:                                     {"langextract_requests_total"},
		`histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m]))) > 5`:                                       {"x_bucket"},
		`sum(rate(a{status="error"}[5m])) / sum(rate(a[5m])) > 0.05`:                                           {`a{status="error"}`, "a"},
		`g < 0.6 and on (job, instance) (rate(h[10m]) + rate(m[10m])) > 0`:                                     {"g", "h", "m"},
		`sum by (lane, reason) ((d > 0) unless d offset 15m)`:                                                  {"d"},
		`max by (job) (p + q) > 0 unless on (job) sum by (job) (rate(j{status!="retried"}[5m])) > 0`:           {"p", "q", `j{status!="retried"}`},
		`absent(up{job="hybridscore"} == 1)`:                                                                   {`up{job="hybridscore"}`},
		`sum(x) by (le) * 1e-6 + count_values("v", y) + label_replace(z, "a", "$1", "b", "(.*)")`:              {"x", "y", "z"},
		`rate(c[5m:1m] @ start()) or vector(0) + :rec:rule{a=~"x|}"} + sum without (i) (w) + nan + Inf + 0x1f`: {"c", `:rec:rule{a=~"x|}"}`, "w"},
	}
	for expr, want := range cases {
		var got []string
		for _, s := range selectors(expr) {
			got = append(got, s.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("selectors(%q) = %q, want %q", expr, got, want)
		}
	}
	if got, want := boolify(`a{x!="1"} >= 1 and b == bool 0 or c<d`), `a{x!="1"} >= bool 1 and b == bool 0 or c< bool d`; got != want {
		t.Errorf("boolify = %q, want %q", got, want)
	}
	if !filtered(`g < 0.6 and on (job) h`) || filtered(`sum(rate(a{x="and"}[5m])) > 1`) {
		t.Error("filtered")
	}

	// Every expression of the files under test names at least one metric.
	rules, _ := loadRules(t)
	exprs := append(rulesExprs(rules), dashboardExprs(t)...)
	for _, e := range exprs {
		if len(selectors(e.Expr)) == 0 {
			t.Errorf("%s: no metric found in %q", e.Where, e.Expr)
		}
	}
	for _, s := range uniqueSelectors(exprs) {
		t.Logf("%s: %d use(s)", s, len(s.Where))
	}
}
