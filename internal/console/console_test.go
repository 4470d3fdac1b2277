package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/console"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// deadLetter stores a dead letter as a worker does: the job's payload, its
// reason and origin in headers, on scoring.dlq.<lane>.
func deadLetter(t testing.TB, js jetstream.JetStream, lane, reason, jobID string) {
	t.Helper()
	h := nats.Header{}
	h.Set(consumer.HeaderReason, reason)
	h.Set(consumer.HeaderError, "failed: "+reason)
	h.Set(consumer.HeaderJobID, jobID)
	h.Set(consumer.HeaderSubject, topology.JobsPrefix+lane)
	h.Set(consumer.HeaderDelivery, "1")
	data := fmt.Sprintf(`{"job_id":%q,"task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`, jobID)
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: topology.DLQPrefix + lane, Data: []byte(data), Header: h}); err != nil {
		t.Fatal(err)
	}
}

// signIn returns an HTTP client signed in to the console at base, and the
// session's CSRF token as the pages carry it.
func signIn(t *testing.T, base, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("sign-in answered %d:\n%s", resp.StatusCode, body)
	}
	return c, string(m[1])
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var seqRow = regexp.MustCompile(`<tr data-seq="(\d+)">`)

func pageSeqs(body string) []uint64 {
	var out []uint64
	for _, m := range seqRow.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		out = append(out, n)
	}
	return out
}

// Dead letters are paged by sequence, filtered by reason and lane, counted
// (also after letters are deleted behind the console's back), and a
// filtered set is replayed as publisher dlq replay does.
func TestDeadLetterPagesCountsAndReplay(t *testing.T) {
	st := newStack(t)
	st.provision(t)
	for i := 1; i <= 120; i++ {
		reason, lane := consumer.ReasonMaxDeliveries, "alpha"
		if i%3 == 0 {
			reason = job.CodeInvalidField
		}
		if i%4 == 0 {
			lane = "beta"
		}
		deadLetter(t, st.js, lane, reason, fmt.Sprintf("job-%03d", i))
	}
	eventually.NoError(t, 10*time.Second, func() error {
		counts, total, ready, err := st.console.Counts()
		if !ready || err != nil || total != 120 {
			return fmt.Errorf("counts %v, %d, ready %v, %v", counts, total, ready, err)
		}
		return nil
	}, "the dead letters counted")
	counts, _, _, _ := st.console.Counts()
	want := map[string]int{"invalid_field/alpha": 30, "invalid_field/beta": 10, "max_deliveries/alpha": 60, "max_deliveries/beta": 20}
	for _, rc := range counts {
		if want[rc.Reason+"/"+rc.Lane] != rc.N {
			t.Fatalf("counts %+v, want %v", counts, want)
		}
	}

	client := &http.Client{}
	code, body := get(t, client, st.url+"/deadletters")
	first := pageSeqs(body)
	if code != 200 || len(first) != 50 || first[0] != 1 || first[49] != 50 || !strings.Contains(body, `href="/deadletters?after=50&amp;`) {
		t.Fatalf("first page %d: %v", code, first)
	}
	if !strings.Contains(body, `position">1–50 of 120<`) || strings.Contains(body, `class="prev-page"`) {
		t.Fatalf("first page's position:\n%s", body)
	}
	_, body = get(t, client, st.url+"/deadletters?after=50")
	if next := pageSeqs(body); len(next) != 50 || next[0] != 51 || !strings.Contains(body, `href="/deadletters?reason=&amp;lane=" class="prev-page"`) {
		t.Fatalf("next page %v, its previous page the first", next)
	}
	_, body = get(t, client, st.url+"/deadletters?after=100")
	if !strings.Contains(body, `position">101–120 of 120<`) || !strings.Contains(body, `href="/deadletters?after=50&amp;reason=&amp;lane=" class="prev-page"`) {
		t.Fatalf("third page's position and previous page:\n%s", body)
	}
	// Filtered: max_deliveries/alpha is letters 1, 2, 5, 7, 10, 11 of
	// every twelve, 60 in all; the 50th is letter 98.
	_, body = get(t, client, st.url+"/deadletters?reason=max_deliveries&lane=alpha&after=98")
	if got := pageSeqs(body); len(got) != 10 || got[0] != 101 || !strings.Contains(body, `position">51–60 of 60<`) ||
		!strings.Contains(body, `class="first-page"`) || !strings.Contains(body, `href="/deadletters?reason=max_deliveries&amp;lane=alpha" class="prev-page"`) {
		t.Fatalf("max_deliveries/alpha, second page: %v\n%s", got, body)
	}
	_, body = get(t, client, st.url+"/deadletters?lane=beta")
	beta := pageSeqs(body)
	if len(beta) != 30 || beta[0] != 4 || beta[1] != 8 {
		t.Fatalf("lane beta %v", beta)
	}
	_, body = get(t, client, st.url+"/deadletters?reason=invalid_field&lane=alpha&after=30")
	if got := pageSeqs(body); len(got) != 22 || got[0] != 33 || got[1] != 39 {
		t.Fatalf("invalid_field/alpha after 30: %v", got)
	}
	_, body = get(t, client, st.url+"/deadletters/7")
	if !strings.Contains(body, "job-007") || !strings.Contains(body, "failed: max_deliveries") {
		t.Fatalf("letter 7:\n%s", body)
	}

	// Deleted elsewhere (publisher dlq replay --delete, say): counted again.
	dlq, _ := st.js.Stream(context.Background(), topology.DLQStream)
	for _, seq := range []uint64{1, 2, 3} {
		if err := dlq.DeleteMsg(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, 10*time.Second, func() bool { _, total, _, _ := st.console.Counts(); return total == 117 }, "117 dead letters counted")

	// A filtered replay: every invalid_field letter of lane beta goes back
	// to its subject with Nats-Msg-Id replay-<SCORING_DLQ created>-<seq>
	// and its job id, and is deleted.
	signed, csrf := signIn(t, st.url, adminToken)
	jobs, _ := st.js.Stream(context.Background(), topology.JobsStream)
	before := jobs.CachedInfo().State.Msgs
	resp, err := signed.PostForm(st.url+"/deadletters/replay", url.Values{"csrf": {csrf}, "reason": {job.CodeInvalidField}, "lane": {"beta"}, "delete": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Replayed 10 dead letters, each deleted once published.") {
		t.Fatalf("replay answered %d:\n%s", resp.StatusCode, b)
	}
	// Continue goes back to the letters of that reason and lane.
	if !strings.Contains(string(b), `id="back"`) || !strings.Contains(string(b), `href="/deadletters?lane=beta&amp;reason=invalid_field"`) {
		t.Fatalf("the outcome's Continue does not keep the filter:\n%s", b)
	}
	// The answer was a redirect to the outcome's page: reloading it shows
	// the outcome again and replays nothing.
	if resp.Request.Method != http.MethodGet || !strings.HasPrefix(resp.Request.URL.Path, "/done/") {
		t.Fatalf("the replay's answer ended on %s %s, want a GET of its outcome", resp.Request.Method, resp.Request.URL)
	}
	if code, body := get(t, signed, resp.Request.URL.String()); code != 200 || !strings.Contains(body, "Replayed 10 dead letters") {
		t.Fatalf("reloading the outcome: %d\n%s", code, body)
	}
	jobs, _ = st.js.Stream(context.Background(), topology.JobsStream)
	if got := jobs.CachedInfo().State.Msgs; got != before+10 {
		t.Fatalf("jobs stream holds %d, want %d", got, before+10)
	}
	m, err := jobs.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject(topology.JobsPrefix+"beta"))
	dlqInfo, _ := st.js.Stream(context.Background(), topology.DLQStream)
	wantID := "replay-" + strconv.FormatInt(dlqInfo.CachedInfo().Created.UnixNano(), 36) + "-12"
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != wantID || m.Header.Get(consumer.HeaderJobID) != "job-012" || !strings.Contains(string(m.Data), `"job-012"`) {
		t.Fatalf("first replayed job %v %s (%v)", m.Header, m.Data, err)
	}
	if _, total, _, _ := st.console.Counts(); total != 107 {
		t.Fatalf("%d dead letters counted after the replay, want 107", total)
	}
	// Without a filter nothing is replayed (as publisher dlq replay).
	resp, err = signed.PostForm(st.url+"/deadletters/replay", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unfiltered replay answered %d", resp.StatusCode)
	}
}

// A job is found where it is: answered (its stored result), waiting in a
// job stream, dead-lettered, or unknown.
func TestFindJob(t *testing.T) {
	st := newStack(t)
	st.provision(t)
	ctx := context.Background()
	if _, err := st.client.Publish(ctx, "default", job.Wire{JobID: "waits-1", TaskDescription: "t", HistoricalPatternText: "p", VectorSimilarity: 0.5}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.js.Publish(ctx, job.ResultSubject("default", "done.1"), []byte(`{"job_id":"done.1","status":"scored"}`)); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, st.js, "default", consumer.ReasonConflict, "dead-1")
	// A rejected job is answered and dead-lettered both: the page says
	// rejected and lists its letter.
	if _, err := st.js.Publish(ctx, job.ResultSubject("default", "bad-1"), []byte(`{"job_id":"bad-1","status":"rejected"}`)); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, st.js, "default", job.CodeInvalidField, "bad-1")
	eventually.True(t, 10*time.Second, func() bool { _, total, ready, _ := st.console.Counts(); return ready && total == 2 }, "2 letters counted")
	if v := st.console.FindJob(ctx, "default", "bad-1"); v.Where != console.WhereAnswered || v.Status != job.StatusRejected || len(v.Letters) != 1 {
		t.Fatalf("a rejected job: %+v", v)
	}
	for _, tc := range []struct{ lane, id, where string }{
		{"default", "waits-1", console.WhereWaiting},
		{"default", "done.1", console.WhereAnswered},
		{"default", "dead-1", console.WhereDeadLetter},
		{"default", "nobody", console.WhereUnknown},
		{"other", "waits-1", console.WhereUnknown},
	} {
		v := st.console.FindJob(ctx, tc.lane, tc.id)
		if v.Where != tc.where || v.Err != "" {
			t.Fatalf("%s/%s: %+v, want %s", tc.lane, tc.id, v, tc.where)
		}
		if tc.where == console.WhereAnswered && !strings.Contains(v.Result, `"done.1"`) {
			t.Fatalf("result %q", v.Result)
		}
	}
	// An answered job's conflicting copy is listed beside its result; the
	// same id dead-lettered in another lane is listed apart; the page trims
	// what was typed.
	deadLetter(t, st.js, "default", consumer.ReasonConflict, "done.1")
	deadLetter(t, st.js, "rescore", job.CodeInvalidField, "far-1")
	eventually.True(t, 10*time.Second, func() bool { _, total, ready, _ := st.console.Counts(); return ready && total == 4 }, "4 letters counted")
	if v := st.console.FindJob(ctx, "default", "done.1"); v.Where != console.WhereAnswered || len(v.Letters) != 1 || v.Letters[0].Reason != consumer.ReasonConflict {
		t.Fatalf("an answered job with a conflicting copy: %+v", v)
	}
	if v := st.console.FindJob(ctx, "default", "far-1"); v.Where != console.WhereUnknown || len(v.Elsewhere) != 1 || v.Elsewhere[0].Lane != "rescore" {
		t.Fatalf("a job id dead-lettered in another lane: %+v", v)
	}
	if code, body := get(t, http.DefaultClient, st.url+"/jobs?job_id=done.1+&lane=+default"); code != 200 || !strings.Contains(body, "answered: scored") {
		t.Fatalf("a job id typed with spaces around: %d\n%s", code, body)
	}
	if code, body := get(t, http.DefaultClient, st.url+"/jobs?job_id=far-1"); code != 200 || !strings.Contains(body, `id="elsewhere"`) {
		t.Fatalf("the other lane's letter is not shown: %d\n%s", code, body)
	}
	// Looked for in the default lane (the field left empty), a job
	// answered in another lane is pointed at.
	if _, err := st.js.Publish(ctx, job.ResultSubject("rescore", "near-1"), []byte(`{"job_id":"near-1","status":"scored"}`)); err != nil {
		t.Fatal(err)
	}
	if v := st.console.FindJob(ctx, "default", "near-1"); v.Where != console.WhereUnknown || v.OtherLane != "rescore" {
		t.Fatalf("a job answered in another lane: %+v", v)
	}
	if code, body := get(t, http.DefaultClient, st.url+"/jobs?job_id=far-1&lane=*"); code != http.StatusBadRequest || !strings.Contains(body, `id="invalid"`) {
		t.Fatalf("a lane that is no lane: %d\n%s", code, body)
	}
	for _, id := range []string{"a%20b", "*", "%3E", "%00", "ord~42:v1"} {
		if code, body := get(t, http.DefaultClient, st.url+"/jobs?job_id="+id); code != http.StatusBadRequest || !strings.Contains(body, `id="invalid"`) || !strings.Contains(body, "is not a job_id") {
			t.Fatalf("a job_id that is no job_id (%s): %d\n%s", id, code, body)
		}
	}
	// A letter refused for its payload warns that a replay is refused again.
	if _, body := get(t, http.DefaultClient, st.url+"/deadletters?reason=invalid_field"); !strings.Contains(body, `id="refused-again"`) {
		t.Fatalf("no warning over invalid_field letters\n%s", body)
	}
	// And over a lane's letters, whose reasons the filter does not name
	// (once the tally has counted far-1).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := get(t, http.DefaultClient, st.url+"/deadletters?lane=rescore")
		if strings.Contains(body, `id="refused-again"`) && strings.Contains(body, "dead-lettered as invalid_field are refused again") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning over lane rescore's invalid_field letter\n%s", body)
		}
	}
	// Copies waiting that carry the id otherwise than as their
	// Nats-Msg-Id: a replay of a dead letter (its id carried over; the
	// letter kept), and a job published without a Nats-Msg-Id (its
	// payload's job_id). And an answered job's copy waiting beside its
	// result (a replay, a resubmission) is named too.
	deadLetter(t, st.js, "default", consumer.ReasonMaxDeliveries, "again-1")
	publish := func(id, msgID string, h nats.Header) {
		t.Helper()
		m := &nats.Msg{Subject: topology.JobsPrefix + "default", Data: []byte(`{"job_id":"` + id + `"}`), Header: h}
		if msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		if _, err := st.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish("again-1", consumer.ReplayIDPrefix+"x-9", nats.Header{consumer.HeaderJobID: []string{"again-1"}})
	publish("plain-1", "", nats.Header{})
	publish("done.1", job.MsgID("default", "done.1"), nats.Header{})
	eventually.True(t, 10*time.Second, func() bool { _, total, ready, _ := st.console.Counts(); return ready && total == 5 }, "5 letters counted")
	if v := st.console.FindJob(ctx, "default", "again-1"); v.Where != console.WhereWaiting || len(v.Letters) != 1 {
		t.Fatalf("a replayed copy waiting, its letter kept: %+v", v)
	}
	if v := st.console.FindJob(ctx, "default", "plain-1"); v.Where != console.WhereWaiting {
		t.Fatalf("a job without a Nats-Msg-Id waiting: %+v", v)
	}
	if v := st.console.FindJob(ctx, "default", "done.1"); v.Where != console.WhereAnswered || v.WaitingStream != topology.JobsStream || v.WaitingSeq == 0 {
		t.Fatalf("an answered job with a copy waiting: %+v", v)
	}
	if _, body := get(t, http.DefaultClient, st.url+"/jobs?job_id=done.1"); !strings.Contains(body, `id="waiting-copy"`) {
		t.Fatalf("the waiting copy is not shown\n%s", body)
	}
}

// With NATS gone, no page passes an outage off as an answer: a job is
// "not known" (503), not "unknown"; the overview says so above figures
// shown as unknown, not zero; the dead letters and a letter answer 503,
// not "none" and 404. Each answers at once.
func TestPagesDuringAnOutage(t *testing.T) {
	st := newStack(t)
	st.provision(t)
	ctx := context.Background()
	if _, err := st.js.Publish(ctx, job.ResultSubject("default", "done-1"), []byte(`{"job_id":"done-1","status":"scored"}`)); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, st.js, "default", consumer.ReasonConflict, "dead-1")
	eventually.True(t, 10*time.Second, func() bool { _, total, ready, _ := st.console.Counts(); return ready && total == 1 }, "1 letter counted")
	if code, body := get(t, http.DefaultClient, st.url+"/jobs?job_id=done-1&lane=default"); code != 200 || !strings.Contains(body, "answered: scored") {
		t.Fatalf("before the outage: %d\n%s", code, body)
	}
	signedIn, csrf := signIn(t, st.url, adminToken)
	st.nats.Stop()
	eventually.True(t, 10*time.Second, func() bool { code, _ := get(t, http.DefaultClient, st.url+"/healthz"); return code == 503 },
		"the console's /healthz says NATS is down")
	start := time.Now()
	for _, tc := range []struct {
		path string
		code int
		want []string
		not  []string
	}{
		{"/jobs?job_id=done-1&lane=default", http.StatusServiceUnavailable, []string{"not known", "NATS is not connected"}, []string{">unknown<"}},
		{"/", http.StatusOK, []string{`id="outage"`, "– stored in"}, []string{"0 stored in", "No worker answers"}},
		{"/deadletters", http.StatusServiceUnavailable, []string{`id="list-error"`, "Not read (above)."}, []string{"No dead letter."}},
		{"/deadletters/1", http.StatusServiceUnavailable, []string{"NATS did not answer"}, nil},
	} {
		code, body := get(t, http.DefaultClient, st.url+tc.path)
		if code != tc.code {
			t.Errorf("%s during the outage: %d, want %d\n%s", tc.path, code, tc.code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s during the outage lacks %q\n%s", tc.path, w, body)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(body, w) {
				t.Errorf("%s during the outage says %q\n%s", tc.path, w, body)
			}
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the four pages took %s during the outage", d)
	}
	// Signed in: no set of letters is offered for replay, and one asked
	// for all the same is refused at once, not after the replay's timeout.
	if _, body := get(t, signedIn, st.url+"/deadletters?reason=job_id_conflict"); strings.Contains(body, `id="replay-set"`) {
		t.Errorf("a replay is offered for letters that could not be read\n%s", body)
	}
	start = time.Now()
	resp, err := signedIn.PostForm(st.url+"/deadletters/replay", url.Values{"csrf": {csrf}, "reason": {"job_id_conflict"}, "delete": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "NATS did not answer") || time.Since(start) > 2*time.Second {
		t.Errorf("a replay of a set during the outage: %d after %s\n%s", resp.StatusCode, time.Since(start), body)
	}
}

// Signing in returns to the page it was asked from (the layout's link
// carries it), never to another site.
func TestSignInReturnsToThePage(t *testing.T) {
	ns := workertest.NATS(t)
	c, err := console.New(console.Config{NC: workertest.Connect(t, ns.URL()), Token: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, c.Handler())
	if _, body := get(t, http.DefaultClient, hs+"/deadletters?reason=internal"); !strings.Contains(body, `href="/login?next=%2fdeadletters%3freason%3dinternal"`) {
		t.Fatalf("the sign-in link does not carry the page\n%s", body)
	}
	if _, body := get(t, http.DefaultClient, hs+"/login?next=%2fdeadletters%3freason%3dinternal"); !strings.Contains(body, `name="next" value="/deadletters?reason=internal"`) {
		t.Fatalf("the sign-in form does not carry the page\n%s", body)
	}
	// A change refused for want of a session offers signing in, back to
	// the page the form was on (its hidden next field: the console sends
	// no Referer).
	resp, err := http.PostForm(hs+"/deadletters/7/delete", url.Values{"next": {"/deadletters/7"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `id="sign-in-here"`) || !strings.Contains(string(body), `href="/login?next=%2fdeadletters%2f7"`) {
		t.Fatalf("a refused change: %d\n%s", resp.StatusCode, body)
	}
	for next, want := range map[string]string{"/deadletters?reason=internal": "/deadletters?reason=internal", "//evil.example/x": "/", "https://evil.example/": "/", "/\\evil.example": "/"} {
		jar, _ := cookiejar.New(nil)
		resp, err := (&http.Client{Jar: jar}).PostForm(hs+"/login", url.Values{"token": {adminToken}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Request.URL.RequestURI(); resp.Request.URL.Host != strings.TrimPrefix(hs, "http://") || got != want {
			t.Errorf("signed in with next %q: landed on %s, want %s", next, resp.Request.URL, want)
		}
	}
	// Signed in, the sign-in page says so; a stale form (another
	// session's CSRF token) is refused with a way back to its page.
	jar, _ := cookiejar.New(nil)
	in := &http.Client{Jar: jar}
	if resp, err := in.PostForm(hs+"/login", url.Values{"token": {adminToken}}); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if _, body := get(t, in, hs+"/login?next=%2fdeadletters"); !strings.Contains(body, `id="already"`) || !strings.Contains(body, `href="/deadletters"`) {
		t.Fatalf("the sign-in page of a signed-in operator\n%s", body)
	}
	resp, err = in.PostForm(hs+"/deadletters/7/replay", url.Values{"csrf": {"stale"}, "next": {"/deadletters/7"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `id="back"`) || !strings.Contains(string(body), `href="/deadletters/7"`) {
		t.Fatalf("a stale form: %d\n%s", resp.StatusCode, body)
	}
}

// The admin token appears in no page and no log line; a wrong one is
// refused; without a token the console is read-only.
func TestNoSecretInPagesOrLogs(t *testing.T) {
	ns := workertest.NATS(t)
	var logs workertest.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), &logs, zap.DebugLevel))
	c, err := console.New(console.Config{NC: workertest.Connect(t, ns.URL()), Token: adminToken, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, c.Handler())
	resp, err := http.PostForm(hs+"/login", url.Values{"token": {"wrong-" + adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong token answered %d", resp.StatusCode)
	}
	signed, csrf := signIn(t, hs, adminToken)
	for _, p := range []string{"/", "/deadletters", "/jobs?job_id=x", "/login"} {
		if _, body := get(t, signed, hs+p); strings.Contains(body, adminToken) {
			t.Fatalf("%s shows the admin token", p)
		}
	}
	if strings.Contains(logs.String(), adminToken) || !strings.Contains(logs.String(), "signed in") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	// The session's CSRF token is not accepted from another session.
	other, _ := signIn(t, hs, adminToken)
	resp, err = other.PostForm(hs+"/workers/x/breaker-reset", url.Values{"csrf": {csrf + "x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged CSRF token answered %d", resp.StatusCode)
	}

	ro, err := console.New(console.Config{NC: workertest.Connect(t, ns.URL())})
	if err != nil {
		t.Fatal(err)
	}
	rs := httptestServer(t, ro.Handler())
	resp, err = http.PostForm(rs+"/login", url.Values{"token": {""}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without a configured token answered %d", resp.StatusCode)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

// One letter is replayed (kept, or deleted with the box ticked) and another
// deleted, from a signed-in session.
func TestReplayAndDeleteOneLetter(t *testing.T) {
	st := newStack(t)
	st.provision(t)
	for i := 1; i <= 3; i++ {
		deadLetter(t, st.js, "default", consumer.ReasonMaxDeliveries, fmt.Sprintf("one-%d", i))
	}
	eventually.True(t, 10*time.Second, func() bool { _, total, ready, _ := st.console.Counts(); return ready && total == 3 }, "3 letters counted")
	signed, csrf := signIn(t, st.url, adminToken)
	post := func(path string, v url.Values) (int, string) {
		t.Helper()
		v.Set("csrf", csrf)
		resp, err := signed.PostForm(st.url+path, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	dlq, _ := st.js.Stream(context.Background(), topology.DLQStream)
	exists := func(seq uint64) bool { _, err := dlq.GetMsg(context.Background(), seq); return err == nil }

	if code, body := post("/deadletters/1/replay", url.Values{}); code != 200 || !strings.Contains(body, "Replayed dead letter 1: job one-1 to scoring.jobs.default.") {
		t.Fatalf("replay 1: %d\n%s", code, body)
	}
	if !exists(1) {
		t.Fatal("letter 1 deleted without the box ticked")
	}
	// Again within the duplicate window: the server drops the copy, and
	// the console says so instead of "Replayed".
	if code, body := post("/deadletters/1/replay", url.Values{}); code != 200 || !strings.Contains(body, "Not published again") ||
		!strings.Contains(body, "dropped this one") {
		t.Fatalf("replay 1 again: %d\n%s", code, body)
	}
	if code, _ := post("/deadletters/2/replay", url.Values{"delete": {"1"}}); code != 200 || exists(2) {
		t.Fatalf("replay 2 with delete: %d, still there: %v", code, exists(2))
	}
	if code, body := post("/deadletters/3/delete", url.Values{}); code != 200 || exists(3) {
		t.Fatalf("delete 3: %d\n%s", code, body)
	}
	if code, body := post("/deadletters/3/delete", url.Values{}); code != http.StatusNotFound || !strings.Contains(body, "No dead letter 3: deleted") {
		t.Fatalf("deleting a deleted letter answered %d\n%s", code, body)
	}
	jobs, _ := st.js.Stream(context.Background(), topology.JobsStream)
	if n := jobs.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("%d jobs published again, want 2", n)
	}
	if _, total, _, _ := st.console.Counts(); total != 1 {
		t.Fatalf("%d letters counted, want 1", total)
	}
	// Replayed while an operator has paused the consumer: the outcome
	// says the job waits, not only that it was published.
	if _, err := st.js.PauseConsumer(context.Background(), topology.JobsStream, topology.Consumer, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, st.js, "default", consumer.ReasonMaxDeliveries, "one-4")
	if code, body := post("/deadletters/4/replay", url.Values{}); code != 200 || !strings.Contains(body, "is paused for") || !strings.Contains(body, "nats consumer resume SCORING_JOBS hybrid-scorer") {
		t.Fatalf("replay into a paused consumer: %d\n%s", code, body)
	}
}

// A worker that stops answering stays on the overview, marked gone with
// when it last answered, instead of vanishing; the count is of those that
// answer.
func TestStoppedWorkerIsListedGone(t *testing.T) {
	st := newStack(t)
	_, stop := workertest.Worker(t, st.nats.URL(), func(c *config.Config) { c.WorkerID = "leaving"; c.LangextractURL = "" })
	eventually.True(t, 10*time.Second, func() bool {
		o := st.console.Overview(context.Background())
		return o.Answering == 1 && len(o.Workers) == 1 && o.Workers[0].Status != nil
	}, "the worker on the overview")
	stop()
	o := st.console.Overview(context.Background())
	if o.Answering != 0 || len(o.Workers) != 1 || o.Workers[0].Gone.IsZero() || o.Workers[0].Name() != "leaving" {
		t.Fatalf("after the stop: %d answering, %+v", o.Answering, o.Workers)
	}
	if _, body := get(t, http.DefaultClient, st.url+"/partial/overview"); !strings.Contains(body, `class="badge bad gone"`) ||
		!strings.Contains(body, `id="worker-count">0<`) {
		t.Fatalf("the overview does not show the worker gone\n%s", body)
	}
	// Started again under the same WORKER_ID, it is one worker again.
	workertest.Worker(t, st.nats.URL(), func(c *config.Config) { c.WorkerID = "leaving"; c.LangextractURL = "" })
	eventually.True(t, 10*time.Second, func() bool {
		o := st.console.Overview(context.Background())
		return o.Answering == 1 && len(o.Workers) == 1 && o.Workers[0].Gone.IsZero()
	}, "the restarted worker alone, not beside a gone row")
}
