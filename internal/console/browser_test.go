package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// browser starts Debian's chromium, headless, driven by chromedp. Without
// chromium the test skips, except in CI (CI=true), where it fails: CI
// installs it (.ci/run).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI installs it: apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); CI=true makes this fail")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshots is where the test writes its screenshots:
// $CONSOLE_SCREENSHOTS, or hybridscore-console under the temporary
// directory.
func screenshots(t *testing.T) string {
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "hybridscore-console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text returns the text of the first element selector matches, now.
func text(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, selector))
}

// attr returns an attribute of the first element selector matches.
func attr(t *testing.T, ctx context.Context, selector, name string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {getAttribute: () => ""}).getAttribute(%q) || ""`, selector, name))
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// post submits a form the page did not offer, as a forged request would:
// it shows what the console answers a client without the session's form.
func post(t *testing.T, ctx context.Context, action string, fields map[string]string) {
	t.Helper()
	inputs := ""
	for k, v := range fields {
		inputs += fmt.Sprintf(`<input type="hidden" name=%q value=%q>`, k, v)
	}
	js := fmt.Sprintf(`document.body.insertAdjacentHTML("beforeend", '<form id="forged" method="post" action=%q>%s</form>'); document.getElementById("forged").submit(); true`, action, inputs)
	eval[bool](t, ctx, js)
	run(t, ctx, "submit a forged form to "+action, visible("#message"))
}

// The console in chromium against a three-worker stack: every worker on the
// overview; a signed-out session refused; a breaker opened by a failing
// langextract reset from the page; a max-deliveries dead letter replayed
// from the page and answered; a job found by id.
func TestConsoleInABrowser(t *testing.T) {
	ctx := browser(t)
	shots := screenshots(t)
	st := newStack(t)
	bg := context.Background()
	// Its requester's stream, where the replayed job's answer is read.
	if _, err := st.js.CreateStream(bg, jetstream.StreamConfig{Name: "TINY", Subjects: []string{"tiny.>"}}); err != nil {
		t.Fatal(err)
	}
	healthy := langextractd.New(langextractd.Faults{})
	st.addWorker(t, "worker-a", healthy)
	st.addWorker(t, "worker-b", langextractd.New(langextractd.Faults{}))
	failing := langextractd.New(langextractd.Faults{Rate503: 1})
	st.addWorker(t, "worker-c", failing)

	// A job that ran out of deliveries, dead-lettered as a worker does
	// (the reason, its error, its id, subject and delivery count): what
	// made it fail is gone by now, so a replay answers it.
	doomed, _ := json.Marshal(job.Wire{JobID: "doomed-1", TaskDescription: "a task", HistoricalPatternText: "a pattern", VectorSimilarity: 0.5, ReplySubject: "tiny.results"})
	lh := nats.Header{}
	lh.Set(consumer.HeaderReason, consumer.ReasonMaxDeliveries)
	lh.Set(consumer.HeaderError, "result not published: no stream answered")
	lh.Set(consumer.HeaderJobID, "doomed-1")
	lh.Set(consumer.HeaderSubject, topology.JobsPrefix+"default")
	lh.Set(consumer.HeaderDelivery, "2")
	if _, err := st.js.PublishMsg(bg, &nats.Msg{Subject: topology.DLQPrefix + "default", Data: doomed, Header: lh}); err != nil {
		t.Fatal(err)
	}
	// Jobs until worker-c's breaker opens (its langextract answers 503).
	for i := 0; ; i++ {
		if w, ok := st.workerStatus(t, "worker-c"); ok && w.Status != nil && w.Status.Breaker == "open" {
			break
		}
		if i == 200 {
			t.Fatal("worker-c's breaker never opened")
		}
		w := job.Wire{JobID: fmt.Sprintf("load-%d", i), TaskDescription: fmt.Sprintf("task %d", i), HistoricalPatternText: fmt.Sprintf("pattern %d", i), VectorSimilarity: 0.5}
		if _, err := st.client.Submit(bg, "default", w, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	failing.SetFaults(langextractd.Faults{})
	var letterSeq uint64
	eventually.NoError(t, 30*time.Second, func() error {
		s, err := st.js.Stream(bg, topology.DLQStream)
		if err != nil {
			return err
		}
		m, err := s.GetMsg(bg, 1, jetstream.WithGetMsgSubject(topology.DLQPrefix+">"))
		if err != nil {
			return err
		}
		if m.Header.Get(consumer.HeaderReason) != consumer.ReasonMaxDeliveries || m.Header.Get(consumer.HeaderJobID) != "doomed-1" {
			return fmt.Errorf("dead letter %v", m.Header)
		}
		letterSeq = m.Sequence
		return nil
	}, "doomed-1 dead-lettered for max deliveries")

	t.Run("overview lists every worker", func(t *testing.T) {
		run(t, ctx, "open the overview", chromedp.Navigate(st.url+"/"), visible("#workers"))
		var n int
		eventually.True(t, 10*time.Second, func() bool {
			n = eval[int](t, ctx, `document.querySelectorAll("#workers tr[data-worker]").length`)
			return n == 3
		}, "three workers on the overview")
		table := text(t, ctx, "#workers")
		for _, id := range []string{"worker-a", "worker-b", "worker-c"} {
			if !strings.Contains(table, id) {
				t.Fatalf("%s missing from the workers table:\n%s", id, table)
			}
		}
		if !strings.Contains(text(t, ctx, `tr[data-worker="worker-c"] .breaker`), "open") {
			t.Fatalf("worker-c's breaker not shown open:\n%s", table)
		}
		// Its /health says degraded (langextract unavailable), and so does
		// the overview, with the warning; the others are not marked.
		if h := text(t, ctx, `tr[data-worker="worker-c"] .health`); h != "degraded" {
			t.Fatalf("worker-c's health shown %q:\n%s", h, table)
		}
		if text(t, ctx, `tr[data-worker="worker-a"] .health`) != "" {
			t.Fatalf("worker-a marked:\n%s", table)
		}
		// The live part is fetched again, without reloading the page.
		var refreshed string
		eventually.True(t, 10*time.Second, func() bool {
			refreshed = eval[string](t, ctx, `document.getElementById("live").dataset.refreshed || ""`)
			return refreshed != ""
		}, "the overview refreshed in place")
		if text(t, ctx, "#signed-in") != "" || strings.Contains(table, "Reset breaker") {
			t.Fatal("a signed-out overview offers mutations")
		}
		// A link the keyboard is on keeps the focus: the live part waits
		// until it leaves, then refreshes again.
		// The last link, far down on a short window: the note that the
		// refresh is paused is in view all the same.
		// The keyboard's first stop skips the header.
		run(t, ctx, "tab once", chromedp.KeyEvent(kb.Tab))
		if c := eval[string](t, ctx, `document.activeElement.className`); c != "skip" {
			t.Fatalf("the first Tab reaches %q, want the skip link", c)
		}
		run(t, ctx, "a short window", chromedp.EmulateViewport(1280, 300))
		run(t, ctx, "focus a link of the live part", chromedp.Focus(chromedp.CSS(`#live a:last-of-type`)), chromedp.ScrollIntoView(`#live a:last-of-type`))
		at := eval[string](t, ctx, `document.getElementById("live").dataset.refreshed`)
		top := eval[float64](t, ctx, `document.getElementById("classes").getBoundingClientRect().top + window.scrollY`)
		time.Sleep(2500 * time.Millisecond)
		if moved := eval[float64](t, ctx, `document.getElementById("classes").getBoundingClientRect().top + window.scrollY`); moved != top {
			t.Fatalf("the refresh-paused note moved the page by %v px", moved-top)
		}
		if !eval[bool](t, ctx, `(function(){var n=document.getElementById("refresh-paused"); if (!n || n.hidden) return false; var r=n.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight;})()`) {
			shoot(t, ctx, shots, "paused-note.png")
			t.Fatal("the note that the refresh is paused is not in view")
		}
		run(t, ctx, "back to 1280 × 900", chromedp.EmulateViewport(1280, 900))
		time.Sleep(2000 * time.Millisecond)
		if eval[bool](t, ctx, `!document.getElementById("live").contains(document.activeElement)`) ||
			eval[string](t, ctx, `document.getElementById("live").dataset.refreshed`) != at {
			t.Fatal("the refresh took the keyboard's focus away")
		}
		eval[bool](t, ctx, `document.activeElement.blur(), true`)
		eventually.True(t, 10*time.Second, func() bool {
			return eval[string](t, ctx, `document.getElementById("live").dataset.refreshed`) != at
		}, "the overview refreshed once the focus left")
	})

	t.Run("a signed-out session cannot mutate", func(t *testing.T) {
		run(t, ctx, "open the letter", chromedp.Navigate(fmt.Sprintf("%s/deadletters/%d", st.url, letterSeq)), visible("#payload"))
		forms := eval[int](t, ctx, `document.querySelectorAll("#replay, #delete").length`)
		if forms != 0 {
			t.Fatal("a signed-out letter page offers replay or delete")
		}
		jobs, _ := st.js.Stream(bg, topology.JobsStream)
		before := jobs.CachedInfo().State.LastSeq
		post(t, ctx, fmt.Sprintf("/deadletters/%d/replay", letterSeq), map[string]string{"csrf": "guessed", "delete": "1"})
		if got := text(t, ctx, "h1"); got != "Refused" {
			t.Fatalf("forged replay answered %q", got)
		}
		shoot(t, ctx, shots, "refused.png")
		w, _ := st.workerStatus(t, "worker-c")
		post(t, ctx, "/workers/"+w.ID+"/breaker-reset", map[string]string{"csrf": "guessed"})
		if got := text(t, ctx, "h1"); got != "Refused" {
			t.Fatalf("forged breaker reset answered %q", got)
		}
		// Nothing changed: the letter is there, no job was published, the
		// breaker is still open.
		dlq, _ := st.js.Stream(bg, topology.DLQStream)
		if _, err := dlq.GetMsg(bg, letterSeq); err != nil {
			t.Fatalf("the dead letter is gone: %v", err)
		}
		jobs, _ = st.js.Stream(bg, topology.JobsStream)
		if after := jobs.CachedInfo().State.LastSeq; after != before {
			t.Fatalf("jobs stream moved from %d to %d", before, after)
		}
		if w, _ := st.workerStatus(t, "worker-c"); w.Status.Breaker != "open" {
			t.Fatalf("worker-c's breaker is %s", w.Status.Breaker)
		}
	})

	t.Run("sign in", func(t *testing.T) {
		run(t, ctx, "wrong token", chromedp.Navigate(st.url+"/login"), visible("#login"),
			chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), "not-the-token"), chromedp.Submit(chromedp.CSS("#login")),
			visible("#message"))
		if text(t, ctx, "#signed-in") != "" {
			t.Fatal("signed in with a wrong token")
		}
		run(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), adminToken), chromedp.Submit(chromedp.CSS("#login")),
			visible("#signed-in"))
		html := eval[string](t, ctx, `document.documentElement.outerHTML`)
		if strings.Contains(html, adminToken) {
			t.Fatal("the admin token is in a page")
		}
		// Signed in, a form without the session's CSRF token is refused.
		post(t, ctx, fmt.Sprintf("/deadletters/%d/delete", letterSeq), map[string]string{"csrf": "guessed"})
		if got := text(t, ctx, "h1"); got != "Refused" {
			t.Fatalf("delete without the CSRF token answered %q", got)
		}
		dlq, _ := st.js.Stream(bg, topology.DLQStream)
		if _, err := dlq.GetMsg(bg, letterSeq); err != nil {
			t.Fatalf("the dead letter is gone: %v", err)
		}
	})

	t.Run("breaker reset from the page", func(t *testing.T) {
		run(t, ctx, "open the overview", chromedp.Navigate(st.url+"/"),
			visible(`tr[data-worker="worker-c"] button.reset-breaker`))
		shoot(t, ctx, shots, "overview.png")
		// Clicked by script: the live part may be replaced between finding
		// the button and a mouse click on it.
		eval[bool](t, ctx, `document.querySelector('tr[data-worker="worker-c"] button.reset-breaker').click(); true`)
		run(t, ctx, "reset worker-c's breaker", visible("#message"))
		if msg := text(t, ctx, "#message"); !strings.Contains(msg, "now closed") {
			t.Fatalf("reset answered %q", msg)
		}
		if w, _ := st.workerStatus(t, "worker-c"); w.Status.Breaker != "closed" {
			t.Fatalf("worker-c's breaker is %s after the reset", w.Status.Breaker)
		}
		run(t, ctx, "back to the overview", chromedp.Navigate(st.url+"/"), visible("#workers"))
		eventually.True(t, 10*time.Second, func() bool {
			return strings.Contains(text(t, ctx, `tr[data-worker="worker-c"] .breaker`), "closed")
		}, "worker-c's breaker shown closed")
		shoot(t, ctx, shots, "overview-after-reset.png")
		w, _ := st.workerStatus(t, "worker-a")
		run(t, ctx, "worker-a's cache report", chromedp.Navigate(st.url+"/workers/"+w.ID+"/cache-report"), visible("#cache-report"))
		if rep := text(t, ctx, "#cache-report"); !strings.Contains(rep, "hit rate") || !strings.Contains(rep, "reused (hits)") {
			t.Fatalf("cache report:\n%s", rep)
		}
		shoot(t, ctx, shots, "cache-report.png")
	})

	t.Run("a max-deliveries dead letter replayed and answered", func(t *testing.T) {
		run(t, ctx, "open the dead letters", chromedp.Navigate(st.url+"/deadletters?reason="+consumer.ReasonMaxDeliveries),
			visible(fmt.Sprintf(`#letters tr[data-seq="%d"]`, letterSeq)))
		shoot(t, ctx, shots, "deadletters.png")
		run(t, ctx, "open the letter", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#letters tr[data-seq="%d"] a`, letterSeq))),
			visible("#replay"))
		if r := text(t, ctx, "#reason"); r != consumer.ReasonMaxDeliveries {
			t.Fatalf("reason %q", r)
		}
		if p := text(t, ctx, "#payload"); !strings.Contains(p, `"doomed-1"`) {
			t.Fatalf("payload %q", p)
		}
		shoot(t, ctx, shots, "letter.png")
		jobs, _ := st.js.Stream(bg, topology.JobsStream)
		before := jobs.CachedInfo().State.LastSeq
		run(t, ctx, "replay", chromedp.Click(chromedp.CSS("#replay button")), visible("#message"))
		if msg := text(t, ctx, "#message"); !strings.Contains(msg, "Replayed dead letter "+strconv.FormatUint(letterSeq, 10)) {
			t.Fatalf("replay answered %q", msg)
		}
		// The outcome is a page of its own: reloading it replays nothing.
		run(t, ctx, "reload the outcome", chromedp.Reload(), visible("#message"))
		if msg := text(t, ctx, "#message"); !strings.Contains(msg, "Replayed dead letter "+strconv.FormatUint(letterSeq, 10)) {
			t.Fatalf("reloaded outcome %q", msg)
		}
		jobs, _ = st.js.Stream(bg, topology.JobsStream)
		if after := jobs.CachedInfo().State.LastSeq; after != before+1 {
			t.Fatalf("the jobs stream moved from %d to %d: want one replay", before, after)
		}
		tiny, _ := st.js.Stream(bg, "TINY")
		eventually.NoError(t, 20*time.Second, func() error {
			m, err := tiny.GetLastMsgForSubject(bg, "tiny.results")
			if err != nil {
				return err
			}
			var r job.Result
			if err := json.Unmarshal(m.Data, &r); err != nil || r.JobID != "doomed-1" {
				return fmt.Errorf("result %s", m.Data)
			}
			return nil
		}, "the replayed job answered")
		dlq, _ := st.js.Stream(bg, topology.DLQStream)
		if _, err := dlq.GetMsg(bg, letterSeq); err == nil {
			t.Fatal("the replayed dead letter was not deleted")
		}
	})

	t.Run("a paused consumer is shown paused", func(t *testing.T) {
		if _, err := st.js.PauseConsumer(bg, topology.BulkStream, topology.BulkConsumer, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = st.js.ResumeConsumer(bg, topology.BulkStream, topology.BulkConsumer) }()
		run(t, ctx, "open the overview", chromedp.Navigate(st.url+"/"), visible(`tr[data-class="bulk"] .paused`))
		if p := text(t, ctx, `tr[data-class="bulk"] .paused`); p != "paused, 1h0m0s left" && !strings.HasPrefix(p, "paused, 59m") {
			t.Fatalf("bulk shown %q", p)
		}
		if text(t, ctx, `tr[data-class="interactive"] .paused`) != "" {
			t.Fatal("interactive shown paused")
		}
	})

	t.Run("a phone's width scrolls tables, not pages", func(t *testing.T) {
		run(t, ctx, "a 390 px viewport", chromedp.EmulateViewport(390, 844))
		defer run(t, ctx, "back to 1280 px", chromedp.EmulateViewport(1280, 900))
		for _, path := range []string{"/", "/deadletters", "/jobs?job_id=never-published"} {
			run(t, ctx, "open "+path, chromedp.Navigate(st.url+path), visible("main"))
			if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
				shoot(t, ctx, shots, "narrow.png")
				t.Fatalf("%s is %d px wide in a 390 px window", path, w)
			}
			if path == "/deadletters" {
				shoot(t, ctx, shots, "deadletters-narrow.png")
			}
		}
		run(t, ctx, "open the overview", chromedp.Navigate(st.url+"/"), visible("#workers"))
		shoot(t, ctx, shots, "overview-narrow.png")
	})

	t.Run("a job found by id", func(t *testing.T) {
		w := job.Wire{JobID: "find-me-1", TaskDescription: "find this task", HistoricalPatternText: "find this pattern", VectorSimilarity: 0.7,
			ReplySubject: job.ResultSubject("default", "find-me-1")}
		if _, err := st.client.Submit(bg, "default", w, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		run(t, ctx, "find the job", chromedp.Navigate(st.url+"/jobs"), visible("#find-job"),
			chromedp.SendKeys(chromedp.CSS(`input[name="job_id"]`), "find-me-1"), chromedp.Submit(chromedp.CSS("#find-job")),
			visible("#result"))
		where := attr(t, ctx, "#where", "data-where")
		if where != "answered" || !strings.Contains(text(t, ctx, "#result"), `"find-me-1"`) {
			t.Fatalf("job page: %s\n%s", where, text(t, ctx, "main"))
		}
		shoot(t, ctx, shots, "job.png")
		run(t, ctx, "find an unknown job", chromedp.Navigate(st.url+"/jobs?job_id=never-published"), visible("#where"))
		where = attr(t, ctx, "#where", "data-where")
		if where != "unknown" {
			t.Fatalf("an unknown job is %q", where)
		}
	})
}
