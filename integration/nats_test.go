//go:build containers

package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// TestNATSRestartMidBatch restarts the NATS container (JetStream store on a
// named volume, so the streams survive) while two workers score 500 jobs: the
// workers report NATS unreachable while it is down (/health unhealthy with
// 503, /readyz 503), reconnect when it is back, and every job ends with
// exactly one stored result, all scored.
func TestNATSRestartMidBatch(t *testing.T) {
	s := newStack(t, 3*time.Minute)
	vol := "hybridscore-it-nats-" + randomSuffix()
	s.removeVolumeAtEnd(vol) // registered before the container: runs after its removal
	n := s.startNATS("nats", natsArgs(), testcontainers.WithMounts(testcontainers.VolumeMount(vol, "/data")))
	s.startLangextract(100 * time.Millisecond)
	env := map[string]string{"LANGEXTRACT_URL": "http://langextract:8156"}
	workers := []*workerProc{s.startWorker("w1", env), s.startWorker("w2", env)}
	c := connect(t, s.endpoint(n, "4222/tcp", "nats"))
	ctx := s.ctx

	const lane = "natsrestart"
	jobs := distinctJobs("natsrestart", 500)
	c.publish(ctx, lane, jobs)
	c.waitStored(ctx, lane, len(jobs)/4, time.Minute)
	before, _ := c.stored(ctx, lane)
	stopTimeout := 5 * time.Second
	stopped := time.Now()
	if err := n.Stop(ctx, &stopTimeout); err != nil {
		t.Fatalf("stop nats: %v", err)
	}
	t.Logf("NATS stopped after %d of %d results (in %s)", before, len(jobs), time.Since(stopped).Round(time.Millisecond))
	for _, w := range workers {
		eventually.NoError(t, 15*time.Second, func() error {
			rep, code, err := w.health()
			if err != nil {
				return err
			}
			ready, _, err := w.get("/readyz")
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable || rep.Status != "unhealthy" || rep.Components["nats"] != "unhealthy" ||
				ready != http.StatusServiceUnavailable {
				return fmt.Errorf("/health %d %s %v, /readyz %d", code, rep.Status, rep.Components, ready)
			}
			return nil
		}, "%s unhealthy and not ready without NATS", w.ID)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start nats again: %v", err)
	}
	t.Logf("NATS back %s after the stop", time.Since(stopped).Round(time.Millisecond))
	// The host port may have changed with the restart: connect afresh.
	c.nc.Close()
	c = connect(t, s.endpoint(n, "4222/tcp", "nats"))
	for _, w := range workers {
		eventually.NoError(t, 30*time.Second, func() error {
			code, body, err := w.get("/readyz")
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		}, "%s ready again", w.ID)
	}
	took := c.waitDone(ctx, lane, len(jobs), 2*time.Minute)
	rs := exactlyOnce(t, jobs, c.results(ctx, lane))
	requireScored(t, rs)
	t.Logf("all %d jobs answered %s after the workers were ready again; %d results came from a redelivery",
		len(jobs), took.Round(time.Millisecond), redelivered(rs))
}

// TestWorkerKilledMidBatch kills (SIGKILL) one of three worker containers
// while they score 600 jobs: its unacknowledged jobs are redelivered to the
// others after ACK_WAIT (5s), none is lost and each has exactly one stored
// result (a result the dead worker stored before acking is deduplicated).
func TestWorkerKilledMidBatch(t *testing.T) {
	s := newStack(t, 3*time.Minute)
	n := s.startNATS("nats", natsArgs())
	s.startLangextract(100 * time.Millisecond)
	env := map[string]string{"LANGEXTRACT_URL": "http://langextract:8156"}
	s.startWorker("w1", env)
	w2 := s.startWorker("w2", env)
	s.startWorker("w3", env)
	c := connect(t, s.endpoint(n, "4222/tcp", "nats"))
	ctx := s.ctx

	const lane = "workerkill"
	jobs := distinctJobs("workerkill", 600)
	c.publish(ctx, lane, jobs)
	c.waitStored(ctx, lane, len(jobs)/4, time.Minute)
	inFlight, _, err := w2.metric("scoring_jobs_in_flight", "")
	if err != nil {
		t.Fatalf("w2 /metrics: %v", err)
	}
	before, _ := c.stored(ctx, lane)
	s.kill(w2.C)
	t.Logf("w2 killed after %d of %d results, with %v jobs in flight", before, len(jobs), inFlight)
	took := c.waitDone(ctx, lane, len(jobs), 2*time.Minute)
	rs := exactlyOnce(t, jobs, c.results(ctx, lane))
	requireScored(t, rs)
	again := redelivered(rs)
	t.Logf("all %d jobs answered %s after the kill; %d results from a redelivery; results per worker %v",
		len(jobs), took.Round(time.Millisecond), again, tally(rs, byWorker))
	if inFlight > 0 && again == 0 {
		t.Errorf("w2 had %v jobs in flight when killed, yet no result came from a redelivery", inFlight)
	}
	// The dead worker's jobs wait out ACK_WAIT before anyone else gets them.
	if again > 0 && took < 3*time.Second {
		t.Errorf("the batch finished %s after the kill although %d jobs were redelivered: sooner than ACK_WAIT (5s)", took, again)
	}
}

// TestNATSClusterNodeLoss runs a three-node NATS cluster, streams with three
// replicas (STREAM_REPLICAS=3; the first worker provisions them), and stops
// the node leading SCORING_JOBS while two workers score 600 jobs: a new
// leader takes over, processing goes on, and every job ends with exactly one
// stored result.
func TestNATSClusterNodeLoss(t *testing.T) {
	s := newStack(t, 4*time.Minute)
	names := []string{"n1", "n2", "n3"}
	var routes []string
	for _, name := range names {
		routes = append(routes, "nats://"+name+":6222")
	}
	nodes := map[string]*testcontainers.DockerContainer{}
	var urls []string
	for _, name := range names {
		nodes[name] = s.startNATS(name, natsArgs("--cluster_name", "hs", "--cluster", "nats://0.0.0.0:6222",
			"--routes", strings.Join(routes, ","), "--server_name", name))
		urls = append(urls, s.endpoint(nodes[name], "4222/tcp", "nats"))
	}
	c := connect(t, strings.Join(urls, ","))
	ctx := s.ctx
	eventually.NoError(t, 60*time.Second, func() error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := c.js.AccountInfo(actx)
		return err
	}, "a JetStream meta leader")

	s.startLangextract(100 * time.Millisecond)
	env := map[string]string{"LANGEXTRACT_URL": "http://langextract:8156", "STREAM_REPLICAS": "3",
		"NATS_URL": "nats://n1:4222,nats://n2:4222,nats://n3:4222"}
	w1 := s.startWorker("w1", env) // provisions the R3 streams
	w2 := s.startWorker("w2", env)
	for _, name := range []string{topology.JobsStream, topology.ResultsStream, topology.DLQStream} {
		eventually.NoError(t, 15*time.Second, func() error {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := c.js.Stream(sctx, name)
			if err != nil {
				return err
			}
			info := st.CachedInfo()
			if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" {
				return fmt.Errorf("%d replicas configured, cluster %+v", info.Config.Replicas, info.Cluster)
			}
			current := 0
			for _, p := range info.Cluster.Replicas {
				if p.Current && !p.Offline {
					current++
				}
			}
			if current != 2 {
				return fmt.Errorf("leader %s, %d current peers of %d", info.Cluster.Leader, current, len(info.Cluster.Replicas))
			}
			return nil
		}, "%s with 3 current replicas", name)
	}

	const lane = "cluster"
	jobs := distinctJobs("cluster", 600)
	c.publish(ctx, lane, jobs)
	c.waitStored(ctx, lane, len(jobs)/4, time.Minute)
	leader := streamLeader(ctx, c.js, topology.JobsStream)
	victim, ok := nodes[leader]
	if !ok {
		t.Fatalf("%s leader %q is none of %v", topology.JobsStream, leader, names)
	}
	before, _ := c.stored(ctx, lane)
	stopTimeout := 5 * time.Second
	if err := victim.Stop(ctx, &stopTimeout); err != nil {
		t.Fatalf("stop %s: %v", leader, err)
	}
	stopped := time.Now()
	t.Logf("stopped %s (leader of %s) after %d of %d results", leader, topology.JobsStream, before, len(jobs))
	eventually.NoError(t, 30*time.Second, func() error {
		if l := streamLeader(ctx, c.js, topology.JobsStream); l == "" || l == leader {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	}, "a new %s leader", topology.JobsStream)
	t.Logf("new %s leader %s after %s", topology.JobsStream, streamLeader(ctx, c.js, topology.JobsStream), time.Since(stopped).Round(time.Millisecond))
	took := c.waitDone(ctx, lane, len(jobs), 2*time.Minute)
	rs := exactlyOnce(t, jobs, c.results(ctx, lane))
	requireScored(t, rs)
	t.Logf("all %d jobs answered %s after the leader change; %d results from a redelivery; per worker %v",
		len(jobs), took.Round(time.Millisecond), redelivered(rs), tally(rs, byWorker))
	for _, w := range []*workerProc{w1, w2} {
		if code, body, err := w.get("/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("%s /readyz after the node loss: %d %s %v", w.ID, code, body, err)
		}
	}
}

// streamLeader returns the server name leading stream name ("" when unknown).
func streamLeader(ctx context.Context, js jetstream.JetStream, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return ""
	}
	if info := st.CachedInfo(); info.Cluster != nil {
		return info.Cluster.Leader
	}
	return ""
}

// redelivered counts results produced by a second or later delivery.
func redelivered(rs map[string]result) int {
	n := 0
	for _, r := range rs {
		if r.DeliveryAttempt > 1 {
			n++
		}
	}
	return n
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
