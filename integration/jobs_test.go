//go:build containers

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// client is the test's own NATS connection, from the host through a mapped
// port: it publishes jobs and reads the result stream.
type client struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream
	p  *producer.Client
}

// connect connects to url (one or several comma-separated servers) and
// keeps reconnecting for ever; closed when the test ends.
func connect(t *testing.T, url string, opts ...nats.Option) *client {
	t.Helper()
	opts = append([]nats.Option{nats.Name("hybridscore-integration"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200 * time.Millisecond), nats.Timeout(5 * time.Second)}, opts...)
	var nc *nats.Conn
	// The server logs "ready" a moment before a mapped port forwards.
	eventually.NoError(t, 20*time.Second, func() (err error) {
		nc, err = nats.Connect(url, opts...)
		return err
	}, "connect to NATS at %s", url)
	t.Cleanup(nc.Close)
	p, err := producer.NewClient(nc)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	return &client{t: t, nc: nc, js: p.JS, p: p}
}

// --- jobs ------------------------------------------------------------------

var (
	verbs    = []string{"implement", "refactor", "migrate", "optimise", "document", "test", "secure", "monitor", "deploy", "rewrite", "debug", "profile"}
	nouns    = []string{"rate limiter", "payment webhook", "search index", "login flow", "report exporter", "cache layer", "message queue consumer", "user profile API", "billing job", "audit log", "feature flag service"}
	domains  = []string{"checkout", "inventory", "identity", "analytics", "notifications", "shipping", "support", "catalog", "pricing"}
	techs    = []string{"PostgreSQL", "Redis", "Kafka", "gRPC", "GraphQL", "Kubernetes", "OAuth2", "Elasticsearch", "S3", "Prometheus"}
	outcomes = []string{"reduced latency by half", "caused a regression in retries", "needed a schema migration", "was rolled back once", "shipped behind a feature flag", "required load testing"}
)

func pick(list []string, i int) string { return list[i%len(list)] }

// taskText and patternText are distinct for distinct (tag, i) and read like
// real job texts, so the analyzer has concepts to extract.
func taskText(tag string, i int) string {
	return fmt.Sprintf("%s the %s of the %s service with %s and %s (%s task %d)",
		strings.ToUpper(pick(verbs, i)[:1])+pick(verbs, i)[1:], pick(nouns, i/3), pick(domains, i/7),
		pick(techs, i/2), pick(techs, i/5+3), tag, i)
}

func patternText(tag string, i int) string {
	return fmt.Sprintf("Earlier we had to %s a %s in the %s team using %s; it %s (%s pattern %d)",
		pick(verbs, i/2+5), pick(nouns, i), pick(domains, i/4+2), pick(techs, i/3+1), pick(outcomes, i), tag, i)
}

// distinctJobs returns n jobs, each with texts of its own (every job needs
// two analyses: nothing is answered from a cache).
func distinctJobs(tag string, n int) []job.Wire {
	jobs := make([]job.Wire, n)
	for i := range jobs {
		jobs[i] = job.Wire{
			JobID:                 fmt.Sprintf("%s-%05d", tag, i),
			TaskDescription:       taskText(tag, i),
			HistoricalPatternText: patternText(tag, i),
			VectorSimilarity:      float64(i%101) / 100,
		}
	}
	return jobs
}

// publish publishes jobs on lane, each acknowledged by the job stream.
func (c *client) publish(ctx context.Context, lane string, jobs []job.Wire) {
	c.t.Helper()
	start := time.Now()
	for _, w := range jobs {
		if _, err := c.p.Publish(ctx, lane, w); err != nil {
			c.t.Fatalf("publish: %v", err)
		}
	}
	c.t.Logf("published %d jobs on lane %s in %s", len(jobs), lane, time.Since(start).Round(time.Millisecond))
}

// --- results ---------------------------------------------------------------

type result struct {
	JobID           string         `json:"job_id"`
	Status          string         `json:"status"`
	FallbackReason  *string        `json:"fallback_reason"`
	Cache           *job.CacheInfo `json:"cache"`
	Error           *job.ErrorInfo `json:"error"`
	WorkerID        string         `json:"worker_id"`
	DeliveryAttempt int            `json:"delivery_attempt"`
}

func resultsSubject(lane string) string { return topology.ResultsPrefix + lane + ".>" }

// stored returns how many results of lane the result stream holds.
func (c *client) stored(ctx context.Context, lane string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, topology.ResultsStream)
	if err != nil {
		return 0, err
	}
	// One subject per job: an ephemeral consumer's pending count counts
	// them in one request.
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{resultsSubject(lane)}})
	if err != nil {
		return 0, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending, nil
}

// waitStored waits until at least n results of lane are stored.
func (c *client) waitStored(ctx context.Context, lane string, n int, timeout time.Duration) {
	c.t.Helper()
	eventually.NoError(c.t, timeout, func() error {
		got, err := c.stored(ctx, lane)
		if err != nil {
			return err
		}
		if got < uint64(n) {
			return fmt.Errorf("%d stored", got)
		}
		return nil
	}, "%d stored results", n)
}

// waitDone waits until n results of lane are stored and the consumer has
// nothing left: no job undelivered and none delivered but unacknowledged.
// After that no delivery can add a result, so the stream's content is final.
func (c *client) waitDone(ctx context.Context, lane string, n int, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	eventually.NoError(c.t, timeout, func() error {
		got, err := c.stored(ctx, lane)
		if err != nil {
			return err
		}
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cons, err := c.js.Consumer(ictx, topology.JobsStream, topology.Consumer)
		if err != nil {
			return fmt.Errorf("%d stored; consumer: %w", got, err)
		}
		ci, err := cons.Info(ictx)
		if err != nil {
			return fmt.Errorf("%d stored; consumer info: %w", got, err)
		}
		if got < uint64(n) || ci.NumPending != 0 || ci.NumAckPending != 0 {
			return fmt.Errorf("%d stored, %d pending, %d ack pending, %d redelivered", got, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
		return nil
	}, "all %d jobs answered and acknowledged", n)
	return time.Since(start)
}

// results reads every stored result of lane with an ordered consumer.
func (c *client) results(ctx context.Context, lane string) []result {
	c.t.Helper()
	want, err := c.stored(ctx, lane)
	if err != nil {
		c.t.Fatalf("count results: %v", err)
	}
	cons, err := c.js.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{resultsSubject(lane)}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		c.t.Fatalf("ordered consumer on %s: %v", topology.ResultsStream, err)
	}
	var (
		mu   sync.Mutex
		out  []result
		bad  []string
		done = make(chan struct{})
	)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var r result
		mu.Lock()
		defer mu.Unlock()
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			bad = append(bad, string(m.Data()))
		}
		if subject := job.ResultSubject(lane, r.JobID); m.Subject() != subject {
			bad = append(bad, fmt.Sprintf("the result of job %q on %s, not %s", r.JobID, m.Subject(), subject))
		}
		out = append(out, r)
		if uint64(len(out)) == want {
			close(done)
		}
	})
	if err != nil {
		c.t.Fatalf("read results: %v", err)
	}
	defer cc.Stop()
	if want > 0 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			mu.Lock()
			c.t.Fatalf("read %d of %d stored results in 30s", len(out), want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		c.t.Errorf("%d malformed results, e.g. %s", len(bad), bad[0])
	}
	return append([]result(nil), out...)
}

// exactlyOnce checks that every job has exactly one stored result and that
// no result belongs to another job; it returns the results by job id.
func exactlyOnce(t *testing.T, jobs []job.Wire, rs []result) map[string]result {
	t.Helper()
	count := map[string]int{}
	byID := map[string]result{}
	for _, r := range rs {
		count[r.JobID]++
		byID[r.JobID] = r
	}
	var missing, dup []string
	for _, w := range jobs {
		switch n := count[w.JobID]; {
		case n == 0:
			missing = append(missing, w.JobID)
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s×%d", w.JobID, n))
		}
		delete(count, w.JobID)
	}
	var foreign []string
	for id := range count {
		foreign = append(foreign, id)
	}
	for _, l := range [][]string{missing, dup, foreign} {
		sort.Strings(l)
	}
	if len(missing)+len(dup)+len(foreign) > 0 {
		t.Fatalf("%d jobs, %d stored results: %d missing %v, %d duplicated %v, %d unknown %v",
			len(jobs), len(rs), len(missing), head(missing), len(dup), head(dup), len(foreign), head(foreign))
	}
	return byID
}

func head(l []string) []string {
	if len(l) > 5 {
		return l[:5]
	}
	return l
}

// tally counts results by a key.
func tally(rs map[string]result, key func(result) string) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[key(r)]++
	}
	return m
}

func byStatus(r result) string { return r.Status }
func byWorker(r result) string { return r.WorkerID }

// requireScored fails unless every result is "scored".
func requireScored(t *testing.T, rs map[string]result) {
	t.Helper()
	if st := tally(rs, byStatus); st[job.StatusScored] != len(rs) {
		for _, r := range rs {
			if r.Status != job.StatusScored {
				t.Fatalf("statuses %v; e.g. job %s: %s (fallback %v, error %v)", st, r.JobID, r.Status, deref(r.FallbackReason), r.Error)
			}
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func getJSON(url string, v any) (int, error) {
	resp, err := httpc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return resp.StatusCode, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}
