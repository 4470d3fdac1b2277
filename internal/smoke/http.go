package smoke

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hybridscore/hybridscore/internal/health"
)

// RequiredMetrics are the metric families every worker exports from its
// start, whatever it has done since: the scoring, fallback, langextract and
// cache families the dashboards and alerts read.
var RequiredMetrics = []string{
	"scoring_jobs_in_flight",
	"hybrid_scoring_duration_seconds",
	"hybrid_scoring_fallback_total",
	"langextract_fallback_total",
	"langextract_requests_total",
	"semantic_cache_hit_rate",
}

// endpoint returns raw with path when raw names only a host (http://h:8053),
// else raw itself.
func endpoint(raw, path string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s)://host[:port][/path] URL", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = path
	}
	return u.String(), nil
}

// get fetches target with o.HTTP, bounded by ctx, and returns the status
// and at most 8 MiB of body.
func get(ctx context.Context, o Options, target string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, err
}

// fetch names c and GETs path of base; done means c is settled already
// (skipped without a base, failed without an answer).
func fetch(ctx context.Context, o Options, c *Check, name, base, flag, path string) (target string, code int, body []byte, done bool) {
	c.Name = name
	if base == "" {
		c.Result, c.Detail = Skip, "no "+flag
		return "", 0, nil, true
	}
	target, err := endpoint(base, path)
	if err != nil {
		c.Result, c.Detail = Fail, err.Error()
		return "", 0, nil, true
	}
	code, body, err = get(ctx, o, target)
	if err != nil {
		c.Result, c.Detail = Fail, fmt.Sprintf("GET %s: %v", target, err)
		return target, 0, nil, true
	}
	return target, code, body, false
}

// checkHealth asks /health for a healthy report (or degraded, with
// DegradedOK) and, when Options.Version is set, that version.
func checkHealth(ctx context.Context, o Options) (c Check) {
	start := time.Now()
	defer func() { c.Elapsed = time.Since(start) }()
	target, code, body, done := fetch(ctx, o, &c, CheckHealth, o.HealthURL, "worker URL (--no-http)", "/health")
	if done {
		return c
	}
	var rep health.Report
	if err := json.Unmarshal(body, &rep); err != nil || rep.Status == "" {
		c.Result, c.Detail = Fail, fmt.Sprintf("GET %s: %d, not a health report: %.80q", target, code, body)
		return c
	}
	names := make([]string, 0, len(rep.Components))
	for k := range rep.Components {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, k+" "+rep.Components[k])
	}
	c.Detail = fmt.Sprintf("%s, version %s (%s)", rep.Status, rep.Version, strings.Join(parts, ", "))
	if len(rep.Warnings) > 0 {
		c.Detail += "; " + strings.Join(rep.Warnings, "; ")
	}
	ok := rep.Status == health.Healthy || (o.DegradedOK && rep.Status == health.Degraded)
	switch {
	case code != http.StatusOK || !ok:
		c.Result, c.Detail = Fail, fmt.Sprintf("HTTP %d, %s", code, c.Detail)
	case o.Version != "" && rep.Version != o.Version:
		c.Result, c.Detail = Fail, fmt.Sprintf("version %s, want %s: %s", rep.Version, o.Version, c.Detail)
	default:
		c.Result = Pass
	}
	return c
}

// checkMetrics asks /metrics for a Prometheus exposition holding every
// RequiredMetrics family.
func checkMetrics(ctx context.Context, o Options) (c Check) {
	start := time.Now()
	defer func() { c.Elapsed = time.Since(start) }()
	target, code, body, done := fetch(ctx, o, &c, CheckMetrics, o.MetricsURL, "worker URL (--no-http)", "/metrics")
	if done {
		return c
	}
	if code != http.StatusOK {
		c.Result, c.Detail = Fail, fmt.Sprintf("GET %s: HTTP %d", target, code)
		return c
	}
	fams := families(body)
	var missing []string
	for _, name := range RequiredMetrics {
		if !fams[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		c.Result, c.Detail = Fail, fmt.Sprintf("%d metric families, missing %s", len(fams), strings.Join(missing, ", "))
		return c
	}
	c.Result = Pass
	c.Detail = fmt.Sprintf("%d metric families, the %d required present", len(fams), len(RequiredMetrics))
	if jobs, ok := sum(body, "scoring_jobs_total", `lane="`+o.Lane+`"`); ok {
		c.Detail += fmt.Sprintf("; jobs of lane %s this worker finished: %.0f", o.Lane, jobs)
	}
	return c
}

// families returns the metric families named by # TYPE lines of a text
// exposition.
func families(body []byte) map[string]bool {
	fams := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = true
		}
	}
	return fams
}

// sum adds the samples of name whose labels contain label.
func sum(body []byte, name, label string) (float64, bool) {
	var total float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok || !strings.Contains(rest, label) {
			continue
		}
		_, val, ok := strings.Cut(rest, "} ")
		var v float64
		if ok {
			if _, err := fmt.Sscan(val, &v); err == nil {
				total += v
				found = true
			}
		}
	}
	return total, found
}
