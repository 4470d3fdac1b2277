//go:build containers

package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerclient "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Images, overridable so that a laptop can use upstream nats and redis
// images (the worker image has no upstream counterpart).
var (
	workerImage = envOr("HYBRIDSCORE_WORKER_IMAGE", "hybridscore/worker:local")
	natsImage   = envOr("HYBRIDSCORE_NATS_IMAGE", "hybridscore/nats:local")
	redisImage  = envOr("HYBRIDSCORE_REDIS_IMAGE", "hybridscore/redis:local")
)

var (
	// strict is set when the suite must run: CI=true or REQUIRE_DOCKER=1.
	strict bool
	// unavailable says why the suite cannot run here ("" when it can).
	unavailable string
	// docker is a raw client for what testcontainers does not wrap (kill).
	docker *testcontainers.DockerClient
)

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

func truthy(name string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(os.Getenv(name)))
	return err == nil && b
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The reaper (ryuk) image cannot be pulled without a registry; every
	// test removes its own containers, volumes and networks instead. Set
	// before testcontainers reads its configuration (once, on first use).
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if !testing.Verbose() {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	strict = truthy("CI") || truthy("REQUIRE_DOCKER")
	unavailable = checkEnvironment()
	if unavailable != "" {
		verdict := "skipping the container suite"
		if strict {
			verdict = "FAILING: CI=true or REQUIRE_DOCKER=1 requires the container suite"
		}
		fmt.Fprintf(os.Stderr, "integration: %s; %s\n", unavailable, verdict)
	}
	code := m.Run()
	if docker != nil {
		_ = docker.Close()
	}
	os.Exit(code)
}

// checkEnvironment returns why the suite cannot run, or "".
func checkEnvironment() (reason string) {
	defer func() {
		// testcontainers panics on some broken Docker setups.
		if r := recover(); r != nil {
			reason = fmt.Sprintf("Docker is not usable: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Sprintf("Docker is not available (no usable DOCKER_HOST or Docker socket): %v", err)
	}
	docker = cli
	var missing []string
	for _, img := range []string{workerImage, natsImage, redisImage} {
		_, err := cli.ImageInspect(ctx, img)
		switch {
		case err == nil:
		case cerrdefs.IsNotFound(err) || errors.Is(err, cerrdefs.ErrNotFound):
			// A locally built image is never pulled; any other name
			// (an upstream image set through the environment) is left to
			// testcontainers, which pulls it when a registry is reachable.
			if strings.HasSuffix(img, ":local") || strings.HasPrefix(img, "hybridscore/") {
				missing = append(missing, img)
			}
		default:
			return fmt.Sprintf("Docker is not usable: inspect image %s: %v", img, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("image(s) %s missing: run make images (make images IMAGE_TAG=<tag> for a tag other than local; HYBRIDSCORE_*_IMAGE names others, see integration/README.md)", strings.Join(missing, ", "))
	}
	return chooseHost(ctx)
}

// chooseHost makes sure the test process reaches containers' mapped ports.
// Inside a container (/.dockerenv) with a local socket, testcontainers
// guesses the default route's gateway, which is wrong when the Docker daemon
// runs in the same machine or VM as the tests (as in this project's CI) and
// right when the host's socket is mounted into a container. Probe one NATS
// container and set TESTCONTAINERS_HOST_OVERRIDE to the address that answers.
// An override already set is left alone.
func chooseHost(ctx context.Context) string {
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); set {
		return ""
	}
	if _, err := os.Stat("/.dockerenv"); err != nil {
		return "" // testcontainers uses localhost, which is right
	}
	c, err := testcontainers.Run(ctx, natsImage,
		testcontainers.WithCmd(natsArgs()...),
		testcontainers.WithExposedPorts("8222/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Server is ready").WithStartupTimeout(30*time.Second)))
	defer func() { _ = testcontainers.TerminateContainer(c, testcontainers.StopTimeout(time.Second)) }()
	if err != nil {
		return fmt.Sprintf("Docker cannot run %s: %v", natsImage, err)
	}
	port, err := c.MappedPort(ctx, "8222/tcp")
	if err != nil {
		return fmt.Sprintf("Docker maps no port: %v", err)
	}
	guess, _ := c.Host(ctx)
	candidates := []string{guess, "127.0.0.1"}
	if gw := bridgeGateway(ctx); gw != "" {
		candidates = append(candidates, gw)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for i, h := range candidates {
		if h == "" {
			continue
		}
		resp, err := hc.Get("http://" + net.JoinHostPort(h, port.Port()) + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if i > 0 {
			os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", h)
			fmt.Fprintf(os.Stderr, "integration: mapped ports answer on %s, not on %s: TESTCONTAINERS_HOST_OVERRIDE=%s\n", h, guess, h)
		}
		return ""
	}
	return fmt.Sprintf("no address among %v reaches a container's mapped port; set TESTCONTAINERS_HOST_OVERRIDE", candidates)
}

// bridgeGateway returns the gateway of Docker's default bridge network: the
// IPAM gateway, or else the first address of its subnet (Docker's choice).
func bridgeGateway(ctx context.Context) string {
	res, err := docker.NetworkInspect(ctx, "bridge", dockerclient.NetworkInspectOptions{})
	if err != nil {
		return ""
	}
	for _, cfg := range res.Network.IPAM.Config {
		if cfg.Gateway.IsValid() && cfg.Gateway.Is4() {
			return cfg.Gateway.String()
		}
		if p := cfg.Subnet; p.IsValid() && p.Addr().Is4() {
			return p.Masked().Addr().Next().String()
		}
	}
	return ""
}

// requireDocker skips the test (or fails it under CI=true/REQUIRE_DOCKER=1)
// when Docker or the images are missing.
func requireDocker(t *testing.T) {
	t.Helper()
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		t.Fatal("TESTCONTAINERS_RYUK_DISABLED must be true: the reaper image cannot be pulled")
	}
	if unavailable == "" {
		return
	}
	if strict {
		t.Fatalf("%s (CI=true or REQUIRE_DOCKER=1: the container suite must run)", unavailable)
	}
	t.Skip(unavailable)
}
