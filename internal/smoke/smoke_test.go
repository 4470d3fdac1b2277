package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// connectTo returns an Options.Connect for url.
func connectTo(url string) func(context.Context) (*nats.Conn, error) {
	return func(context.Context) (*nats.Conn, error) { return nats.Connect(url) }
}

func run(t *testing.T, o Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", text.String())
	return rep
}

// want fails unless each named check ended with its outcome.
func want(t *testing.T, rep *Report, outcomes map[string]Outcome) {
	t.Helper()
	for name, o := range outcomes {
		if c := rep.Check(name); c.Result != o {
			t.Errorf("check %s: %s (%s), want %s", name, c.Result, c.Detail, o)
		}
	}
}

// storedResults counts the results stored under subject.
func storedResults(t *testing.T, url, subject string) uint64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// With the built-in analyzer every check passes but the degraded one, which
// cannot be provoked and is skipped; a second run has jobs of its own and
// passes as well, each job with exactly one stored result.
func TestBuiltInAnalyzerPassesWithDegradedSkipped(t *testing.T) {
	ns := workertest.NATS(t)
	w, _ := workertest.Worker(t, ns.ClientURL(), nil)
	base := "http://" + w.HTTPAddr()
	o := Options{Connect: connectTo(ns.ClientURL()), HealthURL: base, MetricsURL: base + "/metrics", Timeout: 20 * time.Second}

	first := run(t, o)
	want(t, first, map[string]Outcome{CheckScored: Pass, CheckDegraded: Skip, CheckRejected: Pass, CheckExpired: Pass, CheckHealth: Pass, CheckMetrics: Pass})
	if !first.OK || first.Err() != nil {
		t.Fatalf("report not OK: %v", first.Err())
	}
	if d := first.Check(CheckDegraded).Detail; !strings.Contains(d, "in-process") || !strings.Contains(d, "LANGEXTRACT_MAX_URL_BYTES") {
		t.Errorf("degraded skip reason %q does not say why", d)
	}
	var text bytes.Buffer
	_ = first.WriteText(&text)
	if !strings.Contains(text.String(), "smoke OK: 5 pass, 0 fail, 1 skip") {
		t.Errorf("text report lacks its closing count:\n%s", text.String())
	}

	second := run(t, o)
	if !second.OK {
		t.Fatalf("second run failed: %v", second.Err())
	}
	if second.RunID == first.RunID || second.Check(CheckScored).JobID == first.Check(CheckScored).JobID {
		t.Errorf("two runs share run id %s or job id %s", first.RunID, first.Check(CheckScored).JobID)
	}
	for _, rep := range []*Report{first, second} {
		if n := storedResults(t, ns.ClientURL(), rep.Subject); n != 4 {
			t.Errorf("run %s: %d results stored on %s, want 4 (one per job)", rep.RunID, n, rep.Subject)
		}
	}

	// The JSON form carries every row, with the job's result.
	b, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name      string          `json:"name"`
			Result    string          `json:"result"`
			ElapsedMS float64         `json:"elapsed_ms"`
			Answer    json.RawMessage `json:"answer"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var again Report
	if err := json.Unmarshal(b, &again); err != nil || again.Check(CheckScored).Elapsed != first.Check(CheckScored).Elapsed.Truncate(time.Microsecond) {
		t.Errorf("report read back: %v, scored elapsed %s, want %s", err, again.Check(CheckScored).Elapsed, first.Check(CheckScored).Elapsed)
	}
	if !back.OK || len(back.Checks) != 6 || back.Checks[0].Name != CheckScored || back.Checks[0].ElapsedMS <= 0 ||
		!bytes.Contains(back.Checks[0].Answer, []byte(`"status":"scored"`)) {
		t.Errorf("JSON report: %s", b)
	}
}

// With langextract behind the worker the degraded check passes: the long
// text is refused by the client's URL limit before any request is sent, and
// nothing else is affected (the breaker stays closed, so a second run's
// scored job is scored again).
func TestLangextractDegradedPasses(t *testing.T) {
	le := langextractd.New(langextractd.Faults{})
	srv := httptest.NewServer(le)
	t.Cleanup(srv.Close)
	ns := workertest.NATS(t)
	w, _ := workertest.Worker(t, ns.ClientURL(), func(c *config.Config) { c.LangextractURL = srv.URL })
	base := "http://" + w.HTTPAddr()
	o := Options{Connect: connectTo(ns.ClientURL()), HealthURL: base, MetricsURL: base, Timeout: 20 * time.Second}

	for range 2 {
		o.RunID = NewRunID()
		rep := run(t, o)
		want(t, rep, map[string]Outcome{CheckScored: Pass, CheckDegraded: Pass, CheckRejected: Pass, CheckExpired: Pass, CheckHealth: Pass, CheckMetrics: Pass})
		if n := le.CallsFor(longText(withRunID(t, o))); n != 0 {
			t.Errorf("langextract was asked %d times about the over-long text; the client must refuse it before sending", n)
		}
	}
	if d := le.Distinct(); d < 4 {
		t.Errorf("langextract saw %d distinct texts; the scored jobs' texts should have been analysed there", d)
	}
}

func withRunID(t *testing.T, o Options) Options {
	t.Helper()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Without a consuming worker every job check fails, and so does the health
// check of the worker that is gone.
func TestAbsentWorkerFails(t *testing.T) {
	ns := workertest.NATS(t)
	_, stop := workertest.Worker(t, ns.ClientURL(), nil) // provisions the streams
	stop()
	// The gone worker's address is one this test holds, answering nothing:
	// the port a stopped worker frees can be taken at once by a server of
	// another package's test, whose health would then pass.
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gone.Close() })
	go func() {
		for {
			c, err := gone.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	base := "http://" + gone.Addr().String()
	rep := run(t, Options{Connect: connectTo(ns.ClientURL()), HealthURL: base, MetricsURL: base, Timeout: 2 * time.Second})
	want(t, rep, map[string]Outcome{CheckScored: Fail, CheckDegraded: Fail, CheckRejected: Fail, CheckExpired: Fail, CheckHealth: Fail, CheckMetrics: Fail})
	if rep.OK || rep.Err() == nil {
		t.Fatal("report OK without a worker")
	}
	if d := rep.Check(CheckScored).Detail; !strings.Contains(d, "no result within 2s") {
		t.Errorf("scored detail %q", d)
	}

	// NATS itself unreachable: the job checks fail with the reason.
	ns.Stop()
	rep = run(t, Options{Connect: connectTo(ns.ClientURL()), Timeout: time.Second})
	want(t, rep, map[string]Outcome{CheckScored: Fail, CheckExpired: Fail, CheckHealth: Skip, CheckMetrics: Skip})
	if d := rep.Check(CheckScored).Detail; !strings.HasPrefix(d, "NATS: ") {
		t.Errorf("scored detail %q, want the NATS error", d)
	}
}

// A worker whose langextract fails every analysis answers the scored job
// with a degraded result: smoke fails on that row.
func TestBrokenLangextractFails(t *testing.T) {
	srv := httptest.NewServer(langextractd.New(langextractd.Faults{Rate500: 1}))
	t.Cleanup(srv.Close)
	ns := workertest.NATS(t)
	workertest.Worker(t, ns.ClientURL(), func(c *config.Config) { c.LangextractURL = srv.URL })
	rep := run(t, Options{Connect: connectTo(ns.ClientURL()), Timeout: 20 * time.Second})
	want(t, rep, map[string]Outcome{CheckScored: Fail, CheckRejected: Pass, CheckExpired: Pass})
	if d := rep.Check(CheckScored).Detail; !strings.Contains(d, "status degraded") {
		t.Errorf("scored detail %q, want the degraded status named", d)
	}
	if rep.OK {
		t.Fatal("report OK although langextract fails every analysis")
	}
}

// A worker that refuses long texts (MAX_TEXT_BYTES below the smoke's) is
// told apart from a degraded failure, with the flag to pass.
func TestDegradedTextTooLargeNamesTheFlag(t *testing.T) {
	ns := workertest.NATS(t)
	workertest.Worker(t, ns.ClientURL(), func(c *config.Config) { c.MaxTextBytes = 4096 })
	rep := run(t, Options{Connect: connectTo(ns.ClientURL()), Timeout: 20 * time.Second})
	want(t, rep, map[string]Outcome{CheckScored: Pass, CheckDegraded: Fail})
	if d := rep.Check(CheckDegraded).Detail; !strings.Contains(d, "--max-text-bytes") {
		t.Errorf("degraded detail %q, want the flag named", d)
	}
	rep = run(t, Options{Connect: connectTo(ns.ClientURL()), Timeout: 20 * time.Second, MaxTextBytes: 4096})
	want(t, rep, map[string]Outcome{CheckScored: Pass, CheckDegraded: Skip})
}

func TestHealthVersionAndStatus(t *testing.T) {
	ns := workertest.NATS(t)
	w, _ := workertest.Worker(t, ns.ClientURL(), nil)
	base := "http://" + w.HTTPAddr()
	ctx := context.Background()
	o, err := Options{HealthURL: base + "/health", Version: "no-such-version"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c := checkHealth(ctx, o); c.Result != Fail || !strings.Contains(c.Detail, "want no-such-version") {
		t.Errorf("health with a wrong expected version: %s %s", c.Result, c.Detail)
	}
	o.Version = ""
	if c := checkHealth(ctx, o); c.Result != Pass || !strings.HasPrefix(c.Detail, "healthy, version ") {
		t.Errorf("health: %s %s", c.Result, c.Detail)
	}
	o.HealthURL = base + "/livez" // JSON, but not a health report
	if c := checkHealth(ctx, o); c.Result != Fail {
		t.Errorf("/livez taken for a health report: %s", c.Detail)
	}
	o.MetricsURL = base + "/health" // not an exposition
	if c := checkMetrics(ctx, o); c.Result != Fail || !strings.Contains(c.Detail, "missing scoring_jobs_in_flight") {
		t.Errorf("metrics of a non-exposition: %s %s", c.Result, c.Detail)
	}
}

func TestLongTextIsValidAndItsURLTooLong(t *testing.T) {
	for _, max := range []int{256, 4096, 16384, 16385} {
		o, err := Options{MaxTextBytes: max, RunID: "20300101T000000Z-abcdef"}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		s := longText(o)
		if len(s) != max {
			t.Errorf("max %d: text of %d bytes", max, len(s))
		}
		if u := urlBytes(s); u < 2*max {
			t.Errorf("max %d: URL of about %d bytes; want at least twice the text", max, u)
		}
		w := cases(o)[1].wire
		data, _ := json.Marshal(w)
		if _, _, err := job.Decode(data, job.Limits{MaxTextBytes: max}); err != nil {
			t.Errorf("max %d: the degraded job is invalid: %v", max, err)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{{Lane: "a.b"}, {Lane: "smoke", RunID: "has space"}, {MaxTextBytes: 100}, {RunID: strings.Repeat("x", 120)}} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
