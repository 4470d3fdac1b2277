//go:build containers

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/time/rate"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/smoke"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// The two worker versions of the rehearsal and the publisher that smoke-tests
// the result: `make images` builds them (deployments/images.mk,
// images-upgrade), each worker image labelled with the version it reports.
var (
	upgradeImageA  = envOr("HYBRIDSCORE_UPGRADE_IMAGE_A", "hybridscore/worker:upgrade-a")
	upgradeImageB  = envOr("HYBRIDSCORE_UPGRADE_IMAGE_B", "hybridscore/worker:upgrade-b")
	publisherImage = envOr("HYBRIDSCORE_PUBLISHER_IMAGE", "hybridscore/publisher:local")
)

// versionLabel is the image label holding the version the binary reports.
const versionLabel = "org.opencontainers.image.version"

// TestRollingUpgrade rehearses docs/operations.md#rolling-upgrade-and-rollback:
// two workers of version A are replaced one at a time by version B while a
// batch of thousands of jobs runs (each stopped with SIGTERM and drained,
// its successor started and found healthy), then rolled back to A the same
// way under a second batch. Each batch ends with exactly one stored result
// per job, every one scored; /health reports A before and B after the
// upgrade, A after the rollback; finally `publisher smoke`, from the
// publisher image, passes against the stack.
func TestRollingUpgrade(t *testing.T) {
	s := newStack(t, 3*time.Minute)
	started := time.Now()
	vA, vB := upgradeVersions(t, s.ctx)
	n := s.startNATS("nats", natsArgs())
	// 50 ms per analysis keeps jobs held by the workers while they are
	// replaced, so a drain has work to finish and to hand back.
	s.startLangextract(50 * time.Millisecond)
	env := map[string]string{"LANGEXTRACT_URL": "http://langextract:8156"}
	workers := []*workerProc{
		s.startWorker("a1", env, testcontainers.WithImage(upgradeImageA)),
		s.startWorker("a2", env, testcontainers.WithImage(upgradeImageA)),
	}
	c := connect(t, s.endpoint(n, "4222/tcp", "nats"))
	requireVersion(t, workers, vA)

	workers = s.roll(c, "upgrade", workers, []string{"b1", "b2"}, upgradeImageB, vB, env)
	requireVersion(t, workers, vB)
	workers = s.roll(c, "rollback", workers, []string{"a3", "a4"}, upgradeImageA, vA, env)
	requireVersion(t, workers, vA)

	rep := s.runSmoke(workers[0], vA)
	if d := rep.Check(smoke.CheckDegraded); d.Result != smoke.Pass {
		t.Errorf("smoke degraded check: %s (%s); the stack has langextract, so it must pass", d.Result, d.Detail)
	}
	t.Logf("rehearsal done in %s", time.Since(started).Round(time.Millisecond))
}

// upgradeVersions returns the versions the A and B images report, from
// their labels; it skips the test (fails it in CI) when an image is
// missing.
func upgradeVersions(t *testing.T, ctx context.Context) (a, b string) {
	t.Helper()
	var missing []string
	versions := map[string]string{}
	for _, img := range []string{upgradeImageA, upgradeImageB, publisherImage} {
		res, err := docker.ImageInspect(ctx, img)
		switch {
		case cerrdefs.IsNotFound(err) || errors.Is(err, cerrdefs.ErrNotFound):
			missing = append(missing, img)
		case err != nil:
			t.Fatalf("inspect image %s: %v", img, err)
		case res.Config != nil:
			versions[img] = res.Config.Labels[versionLabel]
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("image(s) %s missing: run make images (make images IMAGE_TAG=<tag> for a tag other than local; HYBRIDSCORE_*_IMAGE names others, see integration/README.md)", strings.Join(missing, ", "))
		if strict {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	a, b = versions[upgradeImageA], versions[upgradeImageB]
	if a == "" || b == "" || a == b {
		t.Fatalf("images %s and %s carry versions %q and %q (label %s): want two different ones (make images-upgrade)",
			upgradeImageA, upgradeImageB, a, b, versionLabel)
	}
	return a, b
}

// versionOf reads a worker's /health and returns its status and version.
func versionOf(w *workerProc) (status, version string, err error) {
	var r struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	code, err := getJSON(w.Base+"/health", &r)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("/health answered %d (%s)", code, r.Status)
	}
	return r.Status, r.Version, err
}

// requireVersion fails unless every worker's /health reports version.
func requireVersion(t *testing.T, workers []*workerProc, version string) {
	t.Helper()
	for _, w := range workers {
		status, got, err := versionOf(w)
		if err != nil || got != version {
			t.Fatalf("worker %s: /health version %q (%s, %v), want %q", w.ID, got, status, err, version)
		}
	}
}

// roll replaces old, one at a time, by workers ids running img, while a
// batch of at least 3000 jobs runs on lane: each old worker is stopped
// with SIGTERM and must exit 0 after its drain (not be killed), then its
// successor starts and must answer /health healthy with version. The batch
// keeps being published until the roll is over and some jobs more, so both
// generations score part of it. Every job must end with exactly one stored
// result, scored.
func (s *stack) roll(c *client, lane string, old []*workerProc, ids []string, img, version string, env map[string]string) []*workerProc {
	t := s.t
	t.Helper()
	const (
		minJobs   = 3000
		afterRoll = 300 // jobs published once the new generation is complete
		maxJobs   = 20000
		perSecond = 300
	)
	all := distinctJobs(lane, maxJobs)
	var rolled atomic.Bool
	published := make(chan []job.Wire, 1)
	errs := make(chan error, 1)
	go func() {
		lim := rate.NewLimiter(perSecond, 10)
		doneAt := -1
		for i, w := range all {
			if i >= minJobs && rolled.Load() {
				if doneAt < 0 {
					doneAt = i
				}
				if i-doneAt >= afterRoll {
					published <- all[:i]
					return
				}
			}
			if err := lim.Wait(s.ctx); err != nil {
				errs <- err
				published <- all[:i]
				return
			}
			if _, err := c.p.Publish(s.ctx, lane, w); err != nil {
				errs <- fmt.Errorf("publish job %d: %w", i, err)
				published <- all[:i]
				return
			}
		}
		errs <- fmt.Errorf("the roll outlasted %d jobs at %d/s", maxJobs, perSecond)
		published <- all
	}()

	// Roll once the batch is flowing.
	c.waitStored(s.ctx, lane, 200, time.Minute)
	start := time.Now()
	next := make([]*workerProc, 0, len(old))
	for i, w := range old {
		held, _, err := w.metric("scoring_jobs_in_flight", "")
		if err != nil {
			t.Fatalf("%s: %s /metrics: %v", lane, w.ID, err)
		}
		stopped := time.Now()
		grace := 20 * time.Second // longer than WORKER_DRAIN_TIMEOUT (5s): a kill would be a failed drain
		if err := w.C.Stop(s.ctx, &grace); err != nil {
			t.Fatalf("%s: stop %s: %v", lane, w.ID, err)
		}
		st, err := w.C.State(s.ctx)
		if err != nil {
			t.Fatalf("%s: state of %s: %v", lane, w.ID, err)
		}
		if st.Running || st.ExitCode != 0 || st.OOMKilled {
			t.Fatalf("%s: %s after SIGTERM: running %v, exit code %d, OOM-killed %v; want a clean exit after the drain",
				lane, w.ID, st.Running, st.ExitCode, st.OOMKilled)
		}
		drained := time.Since(stopped)
		nw := s.startWorker(ids[i], env, testcontainers.WithImage(img))
		eventually.NoError(t, 30*time.Second, func() error {
			status, got, err := versionOf(nw)
			switch {
			case err != nil:
				return err
			case status != "healthy" || got != version:
				return fmt.Errorf("status %s, version %q", status, got)
			}
			return nil
		}, "%s: %s healthy with version %s", lane, nw.ID, version)
		t.Logf("%s: %s stopped holding %v jobs (drained in %s), %s (%s, %s) healthy %s after the stop", lane, w.ID, held,
			drained.Round(time.Millisecond), nw.ID, img, version, time.Since(stopped).Round(time.Millisecond))
		next = append(next, nw)
	}
	rolled.Store(true)
	t.Logf("%s: both workers replaced in %s", lane, time.Since(start).Round(time.Millisecond))

	jobs := <-published
	select {
	case err := <-errs:
		t.Fatalf("%s: %v", lane, err)
	default:
	}
	took := c.waitDone(s.ctx, lane, len(jobs), time.Minute)
	rs := exactlyOnce(t, jobs, c.results(s.ctx, lane))
	requireScored(t, rs)
	perWorker := tally(rs, byWorker)
	for _, w := range append(append([]*workerProc(nil), old...), next...) {
		if perWorker[w.ID] == 0 {
			t.Errorf("%s: worker %s scored no job of the batch; results per worker %v", lane, w.ID, perWorker)
		}
	}
	t.Logf("%s: %d jobs, one result each, all scored, the last %s after the last publish; %d from a redelivery; results per worker %v",
		lane, len(jobs), took.Round(time.Millisecond), redelivered(rs), perWorker)
	return next
}

// runSmoke runs `publisher smoke --json` from the publisher image on the
// stack's network against w, expecting version, and fails the test unless
// it exits 0 with an OK report.
func (s *stack) runSmoke(w *workerProc, version string) *smoke.Report {
	t := s.t
	t.Helper()
	base := "http://" + w.ID + ":8053"
	c := s.run("smoke", publisherImage,
		testcontainers.WithCmd("smoke", "--nats-url", "nats://nats:4222", "--health-url", base, "--metrics-url", base,
			"--expect-version", version, "--timeout", "30s", "--json"),
		testcontainers.WithWaitStrategy(wait.ForExit().WithExitTimeout(time.Minute)))
	st, err := c.State(s.ctx)
	if err != nil {
		t.Fatalf("smoke container state: %v", err)
	}
	out := allLogs(t, c)
	var rep smoke.Report
	if i := bytes.IndexByte(out, '{'); i < 0 || json.NewDecoder(bytes.NewReader(out[i:])).Decode(&rep) != nil {
		t.Fatalf("publisher smoke exited %d without a JSON report:\n%s", st.ExitCode, out)
	}
	var table bytes.Buffer
	_ = rep.WriteText(&table)
	t.Logf("publisher smoke against %s (exit %d):\n%s", base, st.ExitCode, table.String())
	if st.ExitCode != 0 || !rep.OK {
		t.Fatalf("publisher smoke failed: exit %d, %v", st.ExitCode, rep.Err())
	}
	return &rep
}

func allLogs(t *testing.T, c *testcontainers.DockerContainer) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	return b
}
