package deployments_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/smoke"
)

const (
	baseFile    = "../docker-compose.yml"
	offlineFile = "../docker-compose.offline.yml"
)

// The subset of the Compose file format the tests look at.

type composeFile struct {
	Version  string                    `yaml:"version"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image         string       `yaml:"image"`
	ContainerName string       `yaml:"container_name"`
	Command       any          `yaml:"command"`
	Ports         []yaml.Node  `yaml:"ports"`
	Expose        []any        `yaml:"expose"`
	Volumes       []yaml.Node  `yaml:"volumes"`
	Healthcheck   *healthcheck `yaml:"healthcheck"`
	Profiles      []string     `yaml:"profiles"`
	DependsOn     yaml.Node    `yaml:"depends_on"`
	Environment   yaml.Node    `yaml:"environment"`
}

type healthcheck struct {
	Test    []string `yaml:"test"`
	Disable bool     `yaml:"disable"`
}

func load(t *testing.T, path string) composeFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s: no services", path)
	}
	return f
}

// effective merges the parts of the override the tests need, as Compose
// does: scalar and mapping keys of the override replace the base's.
func effective(base, override composeService) composeService {
	s := base
	if override.Image != "" {
		s.Image = override.Image
	}
	if override.ContainerName != "" {
		s.ContainerName = override.ContainerName
	}
	if override.Healthcheck != nil {
		s.Healthcheck = override.Healthcheck
	}
	if override.Profiles != nil {
		s.Profiles = override.Profiles
	}
	// Compose appends ports; volumes are merged by target path (not needed
	// here beyond knowing both exist).
	s.Ports = append(slices.Clone(base.Ports), override.Ports...)
	return s
}

// defaultVar matches a variable with a default, ${NAME:-default}.
var defaultVar = regexp.MustCompile(`\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}`)

// withDefaults interpolates s as Compose does in an environment that sets
// none of its variables.
func withDefaults(s string) string { return defaultVar.ReplaceAllString(s, "$1") }

// splitOutside splits s at each sep that is not inside ${…}.
func splitOutside(s string, sep byte) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
		case s[i] == '}' && depth > 0:
			depth--
		case s[i] == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// publishedPorts returns the host ports a service publishes, from the short
// ("8080:80", "127.0.0.1:8080:80/tcp", "80") and long ({published, target})
// syntaxes. A port without a host part publishes nothing fixed (0 is not
// returned).
func publishedPorts(t *testing.T, svc string, ports []yaml.Node) []int {
	t.Helper()
	var out []int
	for _, n := range ports {
		switch n.Kind {
		case yaml.ScalarNode:
			spec, _, _ := strings.Cut(n.Value, "/")
			// Split at the colons outside ${…}: "${BIND:-127.0.0.1}:${PORT:-4222}:4222".
			parts := splitOutside(spec, ':')
			if len(parts) < 2 {
				continue // container port only: a random host port
			}
			host := withDefaults(parts[len(parts)-2])
			if host == "" {
				continue
			}
			// Redis has no password and NATS monitoring no login here:
			// nothing listens beyond the host unless asked to.
			if len(parts) < 3 || withDefaults(parts[0]) != "127.0.0.1" {
				t.Errorf("service %s: port %q is published on every interface by default, want the loopback", svc, n.Value)
			}
			p, err := strconv.Atoi(host)
			if err != nil {
				t.Errorf("service %s: port %q: host part is not a single port", svc, n.Value)
				continue
			}
			out = append(out, p)
		case yaml.MappingNode:
			var long struct {
				Published any `yaml:"published"`
			}
			if err := n.Decode(&long); err != nil {
				t.Errorf("service %s: port: %v", svc, err)
				continue
			}
			switch v := long.Published.(type) {
			case int:
				out = append(out, v)
			case string:
				if p, err := strconv.Atoi(v); err == nil {
					out = append(out, p)
				} else if v != "" {
					t.Errorf("service %s: published port %q is not a single port", svc, v)
				}
			}
		default:
			t.Errorf("service %s: unexpected port entry", svc)
		}
	}
	return out
}

var requiredServices = []string{"nats", "redis", "langextract", "worker", "prometheus", "grafana"}

func TestComposeServices(t *testing.T) {
	base := load(t, baseFile)
	if base.Version != "" && base.Version != "3.8" {
		t.Errorf("version %q: omit it (Compose Specification) or use \"3.8\"", base.Version)
	}
	for _, name := range requiredServices {
		s, ok := base.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if s.Image == "" {
			t.Errorf("service %s has no image", name)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	base := load(t, baseFile)
	offline := load(t, offlineFile)
	for name, s := range base.Services {
		for _, variant := range []struct {
			file string
			svc  composeService
		}{
			{baseFile, s},
			{offlineFile, effective(s, offline.Services[name])},
		} {
			hc := variant.svc.Healthcheck
			switch {
			case hc == nil:
				t.Errorf("%s: service %s has no healthcheck", variant.file, name)
			case hc.Disable:
				t.Errorf("%s: service %s disables its healthcheck", variant.file, name)
			case len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL"):
				t.Errorf("%s: service %s healthcheck test %q: want [\"CMD\", ...] or [\"CMD-SHELL\", ...]", variant.file, name, hc.Test)
			}
		}
	}
	for name := range offline.Services {
		if _, ok := base.Services[name]; !ok {
			t.Errorf("%s: service %s is not in %s", offlineFile, name, baseFile)
		}
	}
}

func TestComposeWorkerScales(t *testing.T) {
	base := load(t, baseFile)
	offline := load(t, offlineFile)
	w := effective(base.Services["worker"], offline.Services["worker"])
	if w.ContainerName != "" {
		t.Errorf("worker has container_name %q: `--scale worker=N` needs it unset", w.ContainerName)
	}
	if ports := publishedPorts(t, "worker", w.Ports); len(ports) > 0 {
		t.Errorf("worker publishes fixed host ports %v: replicas would collide; use expose", ports)
	}
	exposes8053 := slices.ContainsFunc(w.Expose, func(v any) bool { return strings.TrimSuffix(toString(v), "/tcp") == "8053" })
	if !exposes8053 {
		t.Errorf("worker expose = %v, want 8053", w.Expose)
	}

	env := map[string]string{}
	if err := w.Environment.Decode(&env); err != nil {
		t.Fatalf("worker environment: want a mapping: %v", err)
	}
	want := map[string]string{
		"NATS_URL":        "nats://nats:4222",
		"REDIS_HOST":      "redis",
		"LANGEXTRACT_URL": "http://langextract:8156",
		"HTTP_ADDR":       ":8053",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("worker environment %s = %q, want %q", k, env[k], v)
		}
	}

	deps := map[string]struct {
		Condition string `yaml:"condition"`
	}{}
	if err := w.DependsOn.Decode(&deps); err != nil {
		t.Fatalf("worker depends_on: want the long form with conditions: %v", err)
	}
	for _, dep := range []string{"nats", "redis", "langextract"} {
		if deps[dep].Condition != "service_healthy" {
			t.Errorf("worker depends_on %s condition = %q, want service_healthy", dep, deps[dep].Condition)
		}
	}
}

func TestComposePublishedPorts(t *testing.T) {
	base := load(t, baseFile)
	offline := load(t, offlineFile)
	published := map[int]string{}
	for name, s := range base.Services {
		for _, p := range publishedPorts(t, name, effective(s, offline.Services[name]).Ports) {
			if other, dup := published[p]; dup {
				t.Errorf("host port %d published by both %s and %s", p, other, name)
			}
			published[p] = name
		}
	}
	want := map[int]string{4222: "nats", 8222: "nats", 6379: "redis", 8156: "langextract", 9090: "prometheus", 3000: "grafana"}
	for port, svc := range want {
		if published[port] != svc {
			t.Errorf("host port %d published by %q, want %s", port, published[port], svc)
		}
	}
}

func TestComposeOfflineUsesLocalImages(t *testing.T) {
	base := load(t, baseFile)
	offline := load(t, offlineFile)
	for _, name := range []string{"nats", "redis", "worker", "langextract", "console"} {
		o := offline.Services[name]
		e := effective(base.Services[name], o)
		// nats and redis: the local images whatever the environment says;
		// the project's own images may follow IMAGE_PREFIX and IMAGE_TAG
		// (an upgrade), local by default.
		if img := withDefaults(e.Image); !strings.HasPrefix(img, "hybridscore/") || !strings.HasSuffix(img, ":local") ||
			(name == "nats" || name == "redis") && strings.Contains(e.Image, "$") {
			t.Errorf("%s: %s image = %q, want a hybridscore/*:local image", offlineFile, name, e.Image)
		}
		// The local images are FROM scratch: no shell, wget or curl.
		hc := e.Healthcheck
		if hc == nil || len(hc.Test) < 2 {
			continue // reported by TestComposeHealthchecks
		}
		if hc.Test[0] != "CMD" {
			t.Errorf("%s: %s healthcheck uses %s, but its image has no shell", offlineFile, name, hc.Test[0])
		}
		if exe := filepath.Base(hc.Test[1]); exe == "wget" || exe == "curl" || exe == "sh" {
			t.Errorf("%s: %s healthcheck runs %s, which its FROM scratch image lacks", offlineFile, name, exe)
		}
	}
	// Everything else needs a registry: it must sit behind a profile.
	for name, s := range base.Services {
		if slices.Contains([]string{"nats", "redis", "worker", "langextract", "console"}, name) {
			continue
		}
		if e := effective(s, offline.Services[name]); len(e.Profiles) == 0 {
			t.Errorf("%s: service %s (image %s) is not behind a profile, so `up` would pull it", offlineFile, name, e.Image)
		}
	}
}

func TestComposeBindMountsExist(t *testing.T) {
	for _, file := range []string{baseFile, offlineFile} {
		f := load(t, file)
		for name, s := range f.Services {
			for _, v := range s.Volumes {
				var src string
				switch v.Kind {
				case yaml.ScalarNode:
					src, _, _ = strings.Cut(v.Value, ":")
				case yaml.MappingNode:
					var long struct {
						Type   string `yaml:"type"`
						Source string `yaml:"source"`
					}
					if err := v.Decode(&long); err != nil {
						t.Fatal(err)
					}
					src = long.Source
				}
				if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
					if _, ok := f.Volumes[src]; !ok {
						t.Errorf("%s: service %s uses volume %q, which is not declared", file, name, src)
					}
					continue
				}
				// Relative to the compose file, i.e. the repository root.
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("%s: service %s mounts %s: %v", file, name, src, err)
				}
			}
		}
	}
}

// TestComposeConfig runs `docker-compose config -q` when docker-compose (v1)
// or `docker compose` (v2) is installed, to catch what only Compose itself
// validates.
func TestComposeConfig(t *testing.T) {
	var cmd []string
	if _, err := exec.LookPath("docker-compose"); err == nil {
		cmd = []string{"docker-compose"}
	} else if _, err := exec.LookPath("docker"); err == nil && exec.Command("docker", "compose", "version").Run() == nil {
		cmd = []string{"docker", "compose"}
	} else {
		t.Skip("neither docker-compose nor the docker compose plugin is installed")
	}
	for _, files := range [][]string{{baseFile}, {baseFile, offlineFile}} {
		args := slices.Clone(cmd[1:])
		for _, f := range files {
			args = append(args, "-f", f)
		}
		args = append(args, "config", "-q")
		out, err := exec.Command(cmd[0], args...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", cmd[0], strings.Join(args, " "), err, out)
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	default:
		return ""
	}
}

// TestComposeStackSmoke brings up the offline stack (local images only) with
// three workers, as docs/operations.md describes, and runs `publisher smoke`
// from the publisher image on the stack's network, as the producer user,
// against it: every check must pass, the degraded one included, since the
// stack's workers call langextract. It needs Docker, docker-compose, the
// images of `make images` and the stack's host ports; without them it skips,
// or fails under CI=true or REQUIRE_DOCKER=1.
func TestComposeStackSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no compose stack")
	}
	up := composeStack(t)
	up("up", "-d", "--scale", "worker=3")

	workers := strings.Fields(up("ps", "-q", "worker"))
	if len(workers) != 3 {
		t.Fatalf("%d worker containers, want 3", len(workers))
	}
	eventually.NoError(t, 2*time.Minute, func() error {
		out, err := exec.Command("docker", append([]string{"inspect", "-f", "{{.State.Health.Status}}"}, workers...)...).Output()
		if err != nil {
			return fmt.Errorf("docker inspect: %w", err)
		}
		if st := strings.Fields(string(out)); slices.ContainsFunc(st, func(s string) bool { return s != "healthy" }) {
			return fmt.Errorf("worker health %v", st)
		}
		return nil
	}, "three healthy workers")

	cmd := exec.Command("docker", "run", "--rm", "--network", composeProject(t)+"_default", "hybridscore/publisher:local",
		"smoke", "--nats-url", "nats://nats:4222", "--nats-user", "producer", "--nats-password", composePasswords["HYBRIDSCORE_PRODUCER_PASSWORD"],
		"--health-url", "http://worker:8053", "--metrics-url", "http://worker:8053", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep smoke.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("publisher smoke (%v) printed no JSON report: %v\n%s%s", runErr, err, stdout.String(), stderr.String())
	}
	var table bytes.Buffer
	_ = rep.WriteText(&table)
	t.Logf("publisher smoke against the compose stack:\n%s", table.String())
	if runErr != nil || !rep.OK {
		t.Fatalf("publisher smoke failed (%v): %v\n%s", runErr, rep.Err(), stderr.String())
	}
	for _, c := range rep.Checks {
		if c.Result != smoke.Pass {
			t.Errorf("check %s: %s (%s); every check must pass on the compose stack", c.Name, c.Result, c.Detail)
		}
	}
}

// composePasswords replace the laptop defaults of the NATS users for the
// test's stack.
var composePasswords = map[string]string{
	"HYBRIDSCORE_WORKER_PASSWORD":   "compose-test-worker",
	"HYBRIDSCORE_PRODUCER_PASSWORD": "compose-test-producer",
	"HYBRIDSCORE_OPERATOR_PASSWORD": "compose-test-operator",
}

var projectName string

// composeProject is this test run's compose project name, so the stack's
// containers, network and volumes are its own.
func composeProject(t *testing.T) string {
	t.Helper()
	if projectName == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		projectName = "hstest" + hex.EncodeToString(b)
	}
	return projectName
}

// composeStack skips (or fails, under CI=true or REQUIRE_DOCKER=1) unless
// docker-compose, Docker, the local images and the stack's host ports are
// there. It returns a function running docker-compose on the offline stack
// of this test's project and returning its output; the stack is removed,
// volumes included, when the test ends, after its logs are printed if the
// test failed.
func composeStack(t *testing.T) func(args ...string) string {
	t.Helper()
	strict := false
	for _, v := range []string{"CI", "REQUIRE_DOCKER"} {
		if b, err := strconv.ParseBool(os.Getenv(v)); err == nil && b {
			strict = true
		}
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if strict {
			t.Fatalf(format+" (CI=true or REQUIRE_DOCKER=1: the compose stack must run)", args...)
		}
		t.Skipf(format, args...)
	}
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		unavailable("docker-compose is not installed")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		unavailable("Docker is not usable: %v %s", err, bytes.TrimSpace(out))
	}
	for _, img := range []string{"hybridscore/worker:local", "hybridscore/nats:local", "hybridscore/redis:local", "hybridscore/publisher:local"} {
		if exec.Command("docker", "image", "inspect", img).Run() != nil {
			unavailable("image %s missing: run make images", img)
		}
	}
	for _, port := range []int{4222, 8222, 6379, 8156} {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			unavailable("host port %d, which the stack publishes, is in use: %v", port, err)
		}
		l.Close()
	}
	env := os.Environ()
	for k, v := range composePasswords {
		env = append(env, k+"="+v)
	}
	project := composeProject(t)
	run := func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"-p", project, "-f", baseFile, "-f", offlineFile}, args...)...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("docker-compose %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			logs, _ := run(ctx, "logs", "--no-color", "--tail=30")
			t.Logf("--- compose logs ---\n%s", logs)
		}
		if _, err := run(ctx, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Errorf("remove the compose stack: %v", err)
		}
	})
	return func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := run(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
