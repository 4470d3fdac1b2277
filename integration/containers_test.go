//go:build containers

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dockerclient "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// stack is one test's private docker network and the containers on it. Every
// container and the network are removed when the test ends, and the last
// lines of every container's log are printed when the test failed (the whole
// logs are kept in files).
type stack struct {
	t   *testing.T
	ctx context.Context
	net *testcontainers.DockerNetwork
}

// newStack skips (or fails, in CI) without Docker and the images, and creates
// a network whose aliases the containers use to find each other: workers
// reach "nats" and "redis" by name, so a restarted container's new host
// port does not matter to them.
func newStack(t *testing.T, timeout time.Duration) *stack {
	t.Helper()
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create docker network: %v", err)
	}
	return &stack{t: t, ctx: ctx, net: nw}
}

// run starts a container of img on the stack's network under alias, removed
// at the end of the test.
func (s *stack) run(alias, img string, opts ...testcontainers.ContainerCustomizer) *testcontainers.DockerContainer {
	s.t.Helper()
	all := append([]testcontainers.ContainerCustomizer{
		// The lifecycle's eight lines a container would bury a failure's
		// message in the output CI shows; "up in" below says enough.
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		network.WithNetwork([]string{alias}, s.net),
	}, opts...)
	start := time.Now()
	c, err := testcontainers.Run(s.ctx, img, all...)
	// Stop quickly at cleanup: nothing is left to drain by then.
	testcontainers.CleanupContainer(s.t, c, testcontainers.StopTimeout(2*time.Second))
	s.t.Cleanup(func() {
		if s.t.Failed() && c != nil {
			s.t.Logf("--- %s (%s): %s", alias, img, s.keepLogs(alias, c))
		}
	})
	if err != nil {
		if c != nil {
			s.t.Logf("--- %s (%s): %s", alias, img, s.keepLogs(alias, c))
		}
		s.t.Fatalf("start %s (%s): %v", alias, img, err)
	}
	s.t.Logf("%s (%s) up in %s", alias, img, time.Since(start).Round(time.Millisecond))
	return c
}

// keepLogs writes c's whole log to a file under the test's name in
// $HYBRIDSCORE_TEST_LOGS (default: the system's temporary directory) and
// returns its path with the last lines. A test's failure message comes
// before the cleanups that call this, so a short tail keeps it in view.
func (s *stack) keepLogs(alias string, c *testcontainers.DockerContainer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		return "(logs unavailable: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	dir := filepath.Join(envOr("HYBRIDSCORE_TEST_LOGS", os.TempDir()), "hybridscore-logs", strings.ReplaceAll(s.t.Name(), "/", "_"))
	where := "not kept"
	if err := os.MkdirAll(dir, 0o755); err == nil {
		path := filepath.Join(dir, alias+".log")
		if os.WriteFile(path, b, 0o644) == nil {
			where = path
		}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return fmt.Sprintf("whole log in %s; last lines:\n%s", where, strings.Join(lines, "\n"))
}

// natsArgs are the flags of a single JetStream server; they suit both the
// local image (entrypoint /nats-server) and upstream nats images, whose
// entrypoint prefixes nats-server to flags.
func natsArgs(extra ...string) []string {
	return append([]string{"-js", "-sd", "/data", "-m", "8222"}, extra...)
}

// startNATS starts a NATS server under alias with args (natsArgs).
func (s *stack) startNATS(alias string, args []string, opts ...testcontainers.ContainerCustomizer) *testcontainers.DockerContainer {
	s.t.Helper()
	return s.run(alias, natsImage, append([]testcontainers.ContainerCustomizer{
		testcontainers.WithCmd(args...),
		testcontainers.WithExposedPorts("4222/tcp", "8222/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Server is ready").WithStartupTimeout(30 * time.Second)),
	}, opts...)...)
}

// startRedis starts Redis under alias "redis", without persistence and with
// protected mode off (clients come from other containers).
func (s *stack) startRedis() *testcontainers.DockerContainer {
	s.t.Helper()
	return s.run("redis", redisImage,
		testcontainers.WithCmd("redis-server", "--protected-mode", "no", "--port", "6379", "--save", "", "--appendonly", "no"),
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections").WithStartupTimeout(30*time.Second)),
	)
}

// startLangextract starts the worker image's langextract-compatible server
// under alias "langextract" with latency added to every analysis, so that a
// batch lasts long enough to break something in its middle.
func (s *stack) startLangextract(latency time.Duration) *testcontainers.DockerContainer {
	s.t.Helper()
	return s.run("langextract", workerImage,
		testcontainers.WithCmd("langextract-server", "--addr", ":8156", "--latency", latency.String()),
		testcontainers.WithExposedPorts("8156/tcp"),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/health").WithPort("8156/tcp").WithStartupTimeout(30*time.Second)),
	)
}

// workerProc is a worker container and its HTTP endpoints seen from the host.
type workerProc struct {
	ID   string
	C    *testcontainers.DockerContainer
	Base string // http://host:port of /health, /metrics, /readyz
}

// workerEnv is the environment every test worker gets; tests add or
// override entries.
func workerEnv(id string) map[string]string {
	return map[string]string{
		"NATS_URL":             "nats://nats:4222",
		"HTTP_ADDR":            ":8053",
		"WORKER_ID":            id,
		"WORKER_CONCURRENCY":   "8",
		"LOG_LEVEL":            "info",
		"LOG_FORMAT":           "json",
		"ACK_WAIT":             "5s",
		"DUPLICATE_WINDOW":     "1m",
		"WORKER_DRAIN_TIMEOUT": "5s",
	}
}

// startWorker starts a worker container named id (also its WORKER_ID and
// network alias) and waits until /readyz answers 200, i.e. it provisioned or
// bound the topology and is consuming.
func (s *stack) startWorker(id string, env map[string]string, opts ...testcontainers.ContainerCustomizer) *workerProc {
	s.t.Helper()
	e := workerEnv(id)
	maps.Copy(e, env)
	c := s.run(id, workerImage, append([]testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(e),
		testcontainers.WithExposedPorts("8053/tcp"),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/readyz").WithPort("8053/tcp").
			WithStartupTimeout(60 * time.Second).WithPollInterval(200 * time.Millisecond)),
	}, opts...)...)
	base, err := c.PortEndpoint(s.ctx, "8053/tcp", "http")
	if err != nil {
		s.t.Fatalf("worker %s: mapped port: %v", id, err)
	}
	return &workerProc{ID: id, C: c, Base: base}
}

// withHostGateway makes the host (where the test process listens) reachable
// from the container as host.docker.internal, on Linux too.
func withHostGateway() testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.ExtraHosts = append(hc.ExtraHosts, "host.docker.internal:host-gateway")
	})
}

// endpoint returns proto://host:port of a container port seen from the host.
func (s *stack) endpoint(c *testcontainers.DockerContainer, port, proto string) string {
	s.t.Helper()
	ep, err := c.PortEndpoint(s.ctx, port, proto)
	if err != nil {
		s.t.Fatalf("mapped port %s: %v", port, err)
	}
	return ep
}

// kill sends SIGKILL to a container: no drain, no goodbye.
func (s *stack) kill(c *testcontainers.DockerContainer) {
	s.t.Helper()
	if _, err := docker.ContainerKill(s.ctx, c.GetContainerID(), dockerclient.ContainerKillOptions{Signal: "KILL"}); err != nil {
		s.t.Fatalf("kill container: %v", err)
	}
}

// removeVolumeAtEnd removes a named docker volume when the test ends (after
// its containers, which were registered for cleanup later).
func (s *stack) removeVolumeAtEnd(name string) {
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := docker.VolumeRemove(ctx, name, dockerclient.VolumeRemoveOptions{Force: true}); err != nil &&
			!strings.Contains(strings.ToLower(err.Error()), "no such volume") {
			s.t.Errorf("remove volume %s: %v", name, err)
		}
	})
}

// --- the worker's HTTP endpoints --------------------------------------------

var httpc = &http.Client{Timeout: 5 * time.Second}

type healthReport struct {
	Status     string            `json:"status"`
	Components map[string]string `json:"components"`
	Warnings   []string          `json:"warnings"`
}

func (w *workerProc) health() (healthReport, int, error) {
	var r healthReport
	code, err := getJSON(w.Base+"/health", &r)
	return r, code, err
}

func (w *workerProc) get(path string) (int, []byte, error) {
	resp, err := httpc.Get(w.Base + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// metric returns the value of the sample name{labels} (labels as written in
// the exposition, e.g. `tier="redis"`; "" for none), and whether it exists.
func (w *workerProc) metric(name, labels string) (float64, bool, error) {
	code, body, err := w.get("/metrics")
	if err != nil {
		return 0, false, err
	}
	if code != http.StatusOK {
		return 0, false, fmt.Errorf("/metrics answered %d", code)
	}
	v, ok := sample(body, name, labels)
	return v, ok, nil
}

// sample finds one sample in a Prometheus text exposition.
func sample(body []byte, name, labels string) (float64, bool) {
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, want+" ") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(line[len(want):]), &v); err == nil {
			return v, true
		}
	}
	return 0, false
}
