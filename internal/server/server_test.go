package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/redistest"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
)

func TestEndToEndScored(t *testing.T) {
	h := newHarness(t, nil)
	w := wire("e2e-1", "Implement OAuth2 authentication with JWT tokens", "Build user authentication using OAuth2 protocol", 0.85)
	w.TaskCharacteristics = &job.WireCharacteristics{Complexity: "complex"}
	w.CorrelationID = "corr-1"
	h.publish("default", w)
	r := h.wait(10*time.Second, "e2e-1")["e2e-1"]
	if r.Status != job.StatusScored || r.CorrelationID != "corr-1" || r.DeliveryAttempt != 1 || !r.UsedPatterns || r.WorkerID == "" {
		t.Fatalf("result %+v", r)
	}
	if *r.VectorWeight != 0.6 || *r.PatternWeight != 0.4 || !r.WeightsAdjusted || *r.AdjustmentReason != "complexity" {
		t.Fatalf("weights %v/%v", *r.VectorWeight, *r.PatternWeight)
	}
	if want := 0.85*0.6 + *r.PatternScore*0.4; math.Abs(*r.HybridScore-want) > 1e-9 {
		t.Fatalf("hybrid %v, want %v", *r.HybridScore, want)
	}
	if r.Cache == nil || r.Cache.Task != "miss" || r.Cache.Pattern != "miss" || r.FallbackReason != nil {
		t.Fatalf("cache %+v fallback %v", r.Cache, r.FallbackReason)
	}
	eventually.True(t, 5*time.Second, func() bool { return h.stored("scoring.results.default.>")["e2e-1"] == 1 }, "e2e-1 stored once")
	// A reply subject outside any stream gets a plain publish.
	inbox := "_INBOX.e2e"
	sub, _ := h.client.NC.SubscribeSync(inbox)
	w2 := wire("e2e-2", "Implement OAuth2 authentication with JWT tokens", "Bake sourdough bread", 0.5)
	w2.ReplySubject = inbox
	h.publish("default", w2)
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r2 job.Result
	_ = json.Unmarshal(m.Data, &r2)
	if r2.JobID != "e2e-2" || r2.Status != job.StatusScored || r2.Cache.Task != "memory" {
		t.Fatalf("inbox result %s", m.Data)
	}
	// The ack follows the result's claim, a moment after the result is out.
	eventually.True(t, 5*time.Second, func() bool {
		info := h.consumerInfo()
		return info.NumAckPending == 0 && info.NumRedelivered == 0
	}, "both jobs acked, none redelivered")
}

func TestDuplicateJobScoredOnce(t *testing.T) {
	h := newHarness(t, nil)
	w := wire("dup-1", "Cache sessions in Redis", "Store sessions in Redis with a TTL", 0.7)
	h.publish("default", w)
	if dup, err := h.client.Publish(context.Background(), "default", w); err != nil || !dup {
		t.Fatalf("second publish: dup %v err %v", dup, err)
	}
	h.publish("default", wire("dup-after", "later job", "later pattern", 0.1))
	h.wait(10*time.Second, "dup-1", "dup-after")
	eventually.True(t, 5*time.Second, func() bool { return h.stored("scoring.results.default.>")["dup-1"] == 1 }, "dup-1 stored once")
	if h.count("dup-1") != 1 {
		t.Fatalf("dup-1 answered %d times", h.count("dup-1"))
	}
	if h.le.CallsFor("Cache sessions in Redis") != 1 {
		t.Fatalf("task analysed %d times", h.le.CallsFor("Cache sessions in Redis"))
	}
}

func TestBadJobsRejectedDeadLetteredNotRedelivered(t *testing.T) {
	h := newHarness(t, nil)
	bad := []struct {
		msgID, data, code, wantID string
	}{
		{"bad-json", `{"job_id":"bad-json","task_description":`, job.CodeInvalidJSON, "bad-json"},
		{"bad-utf8", "{\"job_id\":\"bad-utf8\",\"task_description\":\"\xff\"}", job.CodeInvalidUTF8, "bad-utf8"},
		{"", `{"task_description":"x","historical_pattern_text":"y","vector_similarity":0.5}`, job.CodeMissingField, "seq-"},
		{"bad-field", `{"job_id":"bad-field","task_description":"x","historical_pattern_text":"y","vector_similarity":"high"}`, job.CodeInvalidField, "bad-field"},
		{"bad-range", `{"job_id":"bad-range","task_description":"x","historical_pattern_text":"y","vector_similarity":7}`, job.CodeInvalidField, "bad-range"},
		{"bad-size", `{"job_id":"bad-size","task_description":"` + strings.Repeat("x", 17000) + `","historical_pattern_text":"y","vector_similarity":0.5}`, job.CodeTooLarge, "bad-size"},
		{"bad-array", `[1,2,3]`, job.CodeInvalidJSON, "bad-array"},
	}
	for _, b := range bad {
		h.publishRaw("default", b.msgID, []byte(b.data))
	}
	h.publish("default", wire("good-after", "a good job", "after the bad ones", 0.3))
	h.wait(10*time.Second, "good-after")
	// The job without a job_id is answered under its stream sequence.
	var seqID string
	eventually.True(t, 10*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for id := range h.results {
			if strings.HasPrefix(id, "seq-") {
				seqID = id
			}
		}
		return seqID != ""
	}, "a result named after the stream sequence")
	for _, b := range bad {
		id := b.wantID
		if id == "seq-" {
			id = seqID
		}
		r := h.wait(5*time.Second, id)[id]
		if r.Status != job.StatusRejected || r.Error == nil || r.Error.Code != b.code || r.HybridScore != nil {
			t.Errorf("%s: result %+v", b.msgID, r)
		}
	}
	// Dead letters: one per bad job, payload unchanged, reason in headers.
	ctx := context.Background()
	dlq, err := h.client.JS.OrderedConsumer(ctx, topology.DLQStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	batch, _ := dlq.Fetch(len(bad), jetstream.FetchMaxWait(3*time.Second))
	payloads := map[string]bool{}
	for m := range batch.Messages() {
		reasons[m.Headers().Get(consumer.HeaderReason)]++
		payloads[string(m.Data())] = true
		if m.Subject() != "scoring.dlq.default" || m.Headers().Get(consumer.HeaderStreamSeq) == "" {
			t.Errorf("dead letter on %s headers %v", m.Subject(), m.Headers())
		}
	}
	want := map[string]int{job.CodeInvalidJSON: 2, job.CodeInvalidUTF8: 1, job.CodeMissingField: 1, job.CodeInvalidField: 2, job.CodeTooLarge: 1}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dead-letter reasons %v, want %v", reasons, want)
	}
	for _, b := range bad {
		if !payloads[b.data] {
			t.Errorf("payload of %s not in the dead-letter stream unchanged", b.msgID)
		}
	}
	// Once the server holds no bad job unacknowledged, none can come back:
	// only then is "not redelivered" worth checking.
	eventually.True(t, 10*time.Second, func() bool { return h.consumerInfo().NumAckPending == 0 }, "every bad job terminated")
	// One delivery per message: the consumer's sequence counts redeliveries.
	if info := h.consumerInfo(); info.NumRedelivered != 0 || info.Delivered.Consumer != uint64(len(bad)+1) {
		t.Errorf("bad jobs redelivered: %d deliveries of %d jobs, %+v", info.Delivered.Consumer, len(bad)+1, info)
	}
	for _, b := range bad {
		id := b.wantID
		if id == "seq-" {
			id = seqID
		}
		if n := h.count(id); n != 1 {
			t.Errorf("%s answered %d times", id, n)
		}
	}
}

func TestLangextractDownDegradesThenBreakerOpens(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.CircuitBreakerThreshold = 4 })
	h.le.SetFaults(langextractd.Faults{Rate503: 1})
	h.publish("default", wire("down-1", "task one", "pattern one", 0.42))
	r := h.wait(10*time.Second, "down-1")["down-1"]
	if r.Status != job.StatusDegraded || *r.FallbackReason != "unavailable" || *r.HybridScore != 0.42 || *r.VectorWeight != 1 || *r.PatternWeight != 0 || r.PatternScore != nil {
		t.Fatalf("result %+v", r)
	}
	h.publish("default", wire("down-2", "task two", "pattern two", 0.3))
	h.wait(10*time.Second, "down-2")
	h.publish("default", wire("down-3", "task three", "pattern three", 0.3))
	r = h.wait(10*time.Second, "down-3")["down-3"]
	if *r.FallbackReason != "circuit_breaker" {
		t.Fatalf("third job: %s, want circuit_breaker", *r.FallbackReason)
	}
	rep := getHealth(t, h)
	if rep.Status != health.Degraded || rep.Components["langextract_client"] != health.Unhealthy || !contains(rep.Warnings, health.WarnLangextract) {
		t.Fatalf("health %+v", rep)
	}
	// Counters move just after the ack, so the result can be seen first.
	waitMetrics(t, h, "langextract_circuit_breaker_state 1", `langextract_fallback_total{reason="circuit_breaker"} 1`,
		`langextract_fallback_total{reason="unavailable"} 2`, `scoring_jobs_total{lane="default",status="degraded"} 3`)
	// Admin reset: refused without the token, then done.
	post(t, "http://"+h.srv.HTTPAddr()+"/admin/circuit-breaker/reset", "wrong", "", 401)
	post(t, "http://"+h.srv.HTTPAddr()+"/admin/circuit-breaker/reset", "s3cret", "", 200)
	h.le.SetFaults(langextractd.Faults{})
	h.publish("default", wire("down-4", "task four", "pattern four", 0.3))
	if r := h.wait(10*time.Second, "down-4")["down-4"]; r.Status != job.StatusScored {
		t.Fatalf("after reset: %+v", r)
	}
}

func TestRetryEndsScoredWhenLangextractReturns(t *testing.T) {
	h := newHarness(t, nil)
	h.le.SetFaults(langextractd.Faults{Rate503: 1})
	w := wire("retry-1", "retry task", "retry pattern", 0.6)
	w.OnFallback = job.FallbackRetry
	h.publish("default", w)
	eventually.True(t, 5*time.Second, func() bool { return h.le.Calls() > 0 }, "the first attempt reaching langextract")
	h.le.SetFaults(langextractd.Faults{})
	r := h.wait(10*time.Second, "retry-1")["retry-1"]
	if r.Status != job.StatusScored || r.DeliveryAttempt < 2 || h.count("retry-1") != 1 {
		t.Fatalf("result %+v (answered %d times)", r, h.count("retry-1"))
	}
}

func TestRetryDegradesOnLastAttempt(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.MaxDeliver = 3; c.CircuitBreakerThreshold = 100 })
	h.le.SetFaults(langextractd.Faults{Rate500: 1})
	w := wire("retry-last", "task", "pattern", 0.6)
	w.OnFallback = job.FallbackRetry
	h.publish("default", w)
	r := h.wait(15*time.Second, "retry-last")["retry-last"]
	if r.Status != job.StatusDegraded || r.DeliveryAttempt != 3 || *r.FallbackReason != "unknown" {
		t.Fatalf("result %+v", r)
	}
}

func TestExpiredDeadline(t *testing.T) {
	h := newHarness(t, nil)
	w := wire("late-1", "task", "pattern", 0.6)
	w.Deadline = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	h.publish("default", w)
	r := h.wait(10*time.Second, "late-1")["late-1"]
	if r.Status != job.StatusExpired || r.Error.Code != job.CodeDeadlineExceeded || r.HybridScore != nil || h.le.Calls() != 0 {
		t.Fatalf("result %+v, %d langextract calls", r, h.le.Calls())
	}
}

func TestInProgressAcksKeepSlowJobs(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.AckWait = time.Second
		c.LangextractTimeout = 5
		c.DuplicateWindow = time.Minute
	})
	h.le.SetFaults(langextractd.Faults{Latency: 2500 * time.Millisecond})
	h.publish("default", wire("slow-1", "slow task", "slow pattern", 0.5))
	r := h.wait(15*time.Second, "slow-1")["slow-1"]
	if r.Status != job.StatusScored || r.DeliveryAttempt != 1 {
		t.Fatalf("result %+v", r)
	}
	if info := h.consumerInfo(); info.NumRedelivered != 0 {
		t.Fatalf("slow job redelivered despite in-progress acks: %+v", info)
	}
}

func TestMaxDeliverExhaustedGoesToDeadLetters(t *testing.T) {
	mutate := func(c *config.Config) { c.MaxDeliver = 2 }
	h := newHarness(t, mutate)
	ctx := context.Background()
	// A results stream that refuses every result as too large: the job
	// can never finish (a reply stream that refuses its copy does not
	// keep it from finishing: its result is stored all the same).
	rs, err := h.client.JS.Stream(ctx, topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rs.CachedInfo().Config
	cfg.MaxMsgSize = 64
	if _, err := h.client.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h.publish("default", wire("doomed-1", "task", "pattern", 0.5))
	dlq, _ := h.client.JS.OrderedConsumer(ctx, topology.DLQStream, jetstream.OrderedConsumerConfig{})
	batch, _ := dlq.Fetch(1, jetstream.FetchMaxWait(15*time.Second))
	var got jetstream.Msg
	for m := range batch.Messages() {
		got = m
	}
	if got == nil || got.Headers().Get(consumer.HeaderReason) != consumer.ReasonMaxDeliveries || got.Headers().Get(consumer.HeaderJobID) != "doomed-1" {
		t.Fatalf("dead letter %v", got)
	}
	eventually.NoError(t, 5*time.Second, func() error {
		s, err := h.client.JS.Stream(ctx, topology.JobsStream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("work queue %+v", info.State)
		}
		return nil
	}, "the exhausted job gone from the work queue")
}

func TestDrainMidBatchLosesNothing(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.WorkerConcurrency = 8 })
	h.le.SetFaults(langextractd.Faults{Latency: 10 * time.Millisecond})
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("drain-%03d", i)
		h.publish("drain", wire(ids[i], fmt.Sprintf("task %d", i), fmt.Sprintf("pattern %d", i%7), 0.5))
	}
	eventually.True(t, 30*time.Second, func() bool { return h.count(ids[20]) > 0 || h.count(ids[40]) > 0 }, "%s or %s answered", ids[20], ids[40])
	h.stop() // mid-batch: drains in-flight jobs, leaves the rest queued
	h.start(func(c *config.Config) { c.WorkerConcurrency = 8 })
	h.wait(60*time.Second, ids...)
	stored := h.stored("scoring.results.drain.>")
	for _, id := range ids {
		if stored[id] != 1 {
			t.Fatalf("%s stored %d times", id, stored[id])
		}
	}
}

func TestHealthReadinessMetricsAndAdmin(t *testing.T) {
	rs := redistest.Start(t)
	host, port, _ := strings.Cut(rs.Addr, ":")
	h := newHarness(t, func(c *config.Config) {
		c.RedisHost = host
		fmt.Sscan(port, &c.RedisPort)
	})
	base := "http://" + h.srv.HTTPAddr()
	rep := getHealth(t, h)
	if rep.Status != health.Healthy || rep.Components["redis"] != health.Healthy || rep.Components["nats"] != health.Healthy || rep.Version == "" || rep.Timestamp == "" {
		t.Fatalf("health %+v", rep)
	}
	get(t, base+"/livez", "", 200)
	get(t, base+"/readyz", "", 200)
	h.publish("default", wire("m-1", "metrics task", "metrics pattern", 0.5))
	h.wait(10*time.Second, "m-1")
	waitMetrics(t, h, "langextract_requests_total", "langextract_request_duration_seconds_bucket", "langextract_circuit_breaker_state",
		"langextract_fallback_total", "semantic_cache_hits_total", "semantic_cache_misses_total", "semantic_cache_hit_rate", "semantic_cache_evictions_total",
		"semantic_cache_size", "semantic_cache_memory_bytes", "hybrid_scoring_duration_seconds_bucket", "pattern_similarity_score_bucket",
		"hybrid_score_confidence_bucket", "hybrid_scoring_fallback_total", "redis_up 1", "scoring_jobs_total", "scoring_job_duration_seconds_bucket",
		"scoring_jobs_in_flight", "scoring_consumer_pending", "scoring_consumer_ack_pending")
	// Admin.
	get(t, base+"/admin/cache", "", 401)
	var cm map[string]any
	_ = json.Unmarshal([]byte(get(t, base+"/admin/cache", "s3cret", 200)), &cm)
	for _, k := range []string{"hit_rate", "hits", "misses", "evictions", "total_requests", "current_size", "max_size", "ttl_seconds", "memory_bytes"} {
		if _, ok := cm[k]; !ok {
			t.Errorf("cache metrics lack %s: %v", k, cm)
		}
	}
	body := post(t, base+"/admin/cache/warm", "s3cret", `{"texts":["warm one","warm two","warm one"]}`, 200)
	if !strings.Contains(body, `"cached": 3`) {
		t.Errorf("warm answered %s", body)
	}
	post(t, base+"/admin/cache/warm", "s3cret", `{"texts":`, 400)
	post(t, base+"/admin/cache/warm", "s3cret", `[`+strings.Repeat(`"x",`, 3<<20)+`"x"]`, 413)
	// Redis down: degraded with the Redis warning, redis_up 0.
	rs.Stop()
	// A job with new texts makes the cache try Redis.
	eventually.NoError(t, 10*time.Second, func() error {
		h.publish("default", wire(fmt.Sprintf("r-%d", time.Now().UnixNano()), fmt.Sprintf("t %d", time.Now().UnixNano()), "p", 0.5))
		if rep = getHealth(t, h); rep.Status != health.Degraded {
			return fmt.Errorf("health %+v", rep)
		}
		return nil
	}, "health degraded with Redis stopped")
	if rep.Components["redis"] != health.Unhealthy || !contains(rep.Warnings, health.WarnRedis) {
		t.Fatalf("health %+v", rep)
	}
	waitMetrics(t, h, "redis_up 0")
	// NATS gone: unhealthy, 503, not ready.
	h.nats.Stop()
	eventually.NoError(t, 10*time.Second, func() error {
		resp, err := http.Get(base + "/health")
		if err != nil {
			t.Fatal(err)
		}
		var r health.Report
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != 503 || r.Status != health.Unhealthy || r.Components["nats"] != health.Unhealthy {
			return fmt.Errorf("%d %+v", resp.StatusCode, r)
		}
		return nil
	}, "health unhealthy with NATS stopped")
	get(t, base+"/readyz", "", 503)
}

func TestAdminRefusedWithoutToken(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.AdminToken = "" })
	post(t, "http://"+h.srv.HTTPAddr()+"/admin/circuit-breaker/reset", "anything", "", 403)
	get(t, "http://"+h.srv.HTTPAddr()+"/admin/cache", "", 403)
	get(t, "http://"+h.srv.HTTPAddr()+"/admin/cache", "a-guess", 403)
	waitMetrics(t, h, "scoring_admin_auth_failures_total 3")
}

func waitMetrics(t *testing.T, h *harness, want ...string) {
	t.Helper()
	eventually.NoError(t, 5*time.Second, func() error {
		m := get(t, "http://"+h.srv.HTTPAddr()+"/metrics", "", 200)
		for _, w := range want {
			if !strings.Contains(m, w) {
				return fmt.Errorf("metrics lack %q", w)
			}
		}
		return nil
	}, "every wanted metric")
}

func getHealth(t *testing.T, h *harness) health.Report {
	t.Helper()
	var r health.Report
	if err := json.Unmarshal([]byte(get(t, "http://"+h.srv.HTTPAddr()+"/health", "", 0)), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t *testing.T, url, token string, want int) string {
	t.Helper()
	return do(t, http.MethodGet, url, token, "", want)
}

func post(t *testing.T, url, token, body string, want int) string {
	t.Helper()
	return do(t, http.MethodPost, url, token, body, want)
}

func do(t *testing.T, method, url, token, body string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestConsumerDeletedWhileRunningIsRecreated(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := newHarnessLog(t, nil, zap.New(core))
	h.publish("default", wire("before", "task before", "pattern", 0.5))
	h.wait(10*time.Second, "before")
	if err := h.client.JS.DeleteConsumer(context.Background(), topology.JobsStream, topology.Consumer); err != nil {
		t.Fatal(err)
	}
	// The worker notices, is not ready meanwhile, provisions the consumer
	// again and goes on.
	h.publish("default", wire("after", "task after", "pattern", 0.5))
	if r := h.wait(30*time.Second, "after")["after"]; r.Status != job.StatusScored {
		t.Fatalf("after the consumer was deleted: %+v", r)
	}
	get(t, "http://"+h.srv.HTTPAddr()+"/readyz", "", 200)
	if logs.FilterMessage("consumer bound again").Len() != 1 {
		t.Fatalf("the worker did not bind again: %v", logs.All())
	}
}

func TestReplySubjectWithoutStreamGetsAPlainPublish(t *testing.T) {
	h := newHarness(t, nil)
	sub, _ := h.client.NC.SubscribeSync("replies.plain")
	w := wire("plain-1", "task", "pattern", 0.5)
	w.ReplySubject = "replies.plain"
	h.publish("default", w)
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Data), `"job_id":"plain-1"`) {
		t.Fatalf("reply %s", m.Data)
	}
}

func TestProvisioningOffNeedsAnExistingConsumer(t *testing.T) {
	ns := workertest.NATS(t)
	cfg := config.Defaults()
	cfg.NATSURL, cfg.HTTPAddr, cfg.Provision = ns.URL(), "127.0.0.1:0", false
	if _, err := server.New(context.Background(), cfg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "consumer") {
		t.Fatalf("without streams and PROVISION=false: %v", err)
	}
}

// Wrong admin tokens are counted, and guessing faster than five a second
// is refused; the right token still passes.
func TestAdminAuthFailuresAreCountedAndSlowed(t *testing.T) {
	h := newHarness(t, nil)
	base := "http://" + h.srv.HTTPAddr()
	codes := map[int]int{}
	for i := range 40 {
		req, _ := http.NewRequest("GET", base+"/admin/cache", nil)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[401] < 10 || codes[429] == 0 || codes[401]+codes[429] != 40 {
		t.Fatalf("answers %v: want a burst of 401s, then 429s", codes)
	}
	get(t, base+"/admin/cache", "s3cret", 200)
	waitMetrics(t, h, "scoring_admin_auth_failures_total 40")
}

// Fifty concurrent /health requests cost langextract one health probe.
func TestLangextractHealthProbesAreCoalesced(t *testing.T) {
	var probes atomic.Int64
	le := langextractd.New(langextractd.Faults{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			probes.Add(1)
			// A slow probe: the 50 requests overlap it.
			time.Sleep(100 * time.Millisecond)
		}
		le.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	h := newHarness(t, func(c *config.Config) { c.LangextractURL = hs.URL })
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + h.srv.HTTPAddr() + "/health")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := probes.Load(); n != 1 {
		t.Fatalf("%d langextract health probes for 50 concurrent /health requests", n)
	}
}

// An idle keep-alive connection to the HTTP endpoints is closed after
// HTTP_IDLE_TIMEOUT.
func TestIdleHTTPConnectionsAreClosed(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.HTTPIdleTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", h.srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /livez HTTP/1.1\r\nHost: worker\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the server sent more on an idle connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("idle connection still open after %s", time.Since(start))
	}
}
