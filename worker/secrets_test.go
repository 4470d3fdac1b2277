package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/health"
)

// No secret given to the worker — in NATS_URL, NATS_PASSWORD, NATS_TOKEN,
// REDIS_PASSWORD or ADMIN_TOKEN — appears in its logs (debug level), its
// errors, --help, /health or /metrics, through a failed connect, a
// reconnect after a NATS restart and an unreachable Redis.
func TestSecretsNeverAppearInOutput(t *testing.T) {
	const natsPass, redisPass, adminToken, natsToken = "natsS3cret", "redisS3cret", "adminS3cret", "tokenS3cret"
	secrets := []string{natsPass, redisPass, adminToken, natsToken}
	port := server.RANDOM_PORT
	start := func() *server.Server {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
			Users: []*server.User{{Username: "worker", Password: natsPass}}})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("NATS not ready")
		}
		return ns
	}
	ns := start()
	// The restart below must come back on the port the first start bound:
	// the worker reconnects to its URL. (Between the two, another process
	// could take it; the restart would then fail, not hang.)
	port = ns.Addr().(*net.TCPAddr).Port
	url := fmt.Sprintf("nats://worker:%s@127.0.0.1:%d", natsPass, port)
	// An unreachable Redis: a listener that never accepts, so the port stays
	// ours and every command of the worker's times out.
	blackHole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blackHole.Close()
	w := startWorker(t, url, "http://127.0.0.1:1", "LOG_LEVEL=debug", "REDIS_HOST=127.0.0.1",
		fmt.Sprintf("REDIS_PORT=%d", blackHole.Addr().(*net.TCPAddr).Port), "REDIS_PASSWORD="+redisPass, "ADMIN_TOKEN="+adminToken)
	var seen strings.Builder
	for _, path := range []string{"/health", "/metrics", "/readyz"} {
		resp, err := http.Get("http://" + w.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.Write(b)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	// NATS comes back only once the worker has seen it gone: the disconnect
	// logged, and /health (read into seen) reporting it.
	w.out.WaitLine(t, 10*time.Second, "NATS disconnected")
	eventually.NoError(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + w.addr + "/health")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rep health.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return err
		}
		if rep.Components["nats"] != health.Unhealthy {
			return fmt.Errorf("nats %s", rep.Components["nats"])
		}
		seen.Write(b)
		return nil
	}, "/health reporting NATS unhealthy")
	ns = start()
	defer ns.Shutdown()
	w.out.WaitLine(t, 10*time.Second, "NATS reconnected")
	// A start that fails: wrong password, and a token the server refuses.
	for _, env := range [][]string{
		{"NATS_URL=" + fmt.Sprintf("nats://worker:%s-wrong@127.0.0.1:%d", natsPass, port)},
		{"NATS_URL=" + fmt.Sprintf("nats://127.0.0.1:%d", port), "NATS_TOKEN=" + natsToken},
		{"NATS_URL=" + fmt.Sprintf("nats://127.0.0.1:%d", port), "NATS_USER=worker", "NATS_PASSWORD=" + natsPass + "x"},
	} {
		cmd := exec.Command(workerBin)
		cmd.Env = append(append(os.Environ(), "HTTP_ADDR=127.0.0.1:0", "ADMIN_TOKEN="+adminToken), env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("worker started with %v", env)
		}
		seen.Write(out)
	}
	help, _ := exec.Command(workerBin, "--help").CombinedOutput()
	seen.Write(help)
	seen.WriteString(w.out.String())
	for _, s := range secrets {
		if strings.Contains(seen.String(), s) {
			t.Errorf("secret %q appears in the output", s)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", seen.String())
	}
}

// A start-up error over a malformed secret-bearing URL names the variable
// and never prints the secret, not even the part of it a URL parser took
// for a host and port (a '#' in the password ends the authority there).
func TestMalformedURLsNeverPrintTheirSecret(t *testing.T) {
	for _, tt := range []struct{ env, name, secret string }{
		{"NATS_URL=nats://worker:Sup3r#pw@127.0.0.1:4222", "NATS_URL", "Sup3r"},
		{"NATS_URL=nats://worker:Sup3r?pw@127.0.0.1:4222", "NATS_URL", "Sup3r"},
		{"NATS_URL=nats://127.0.0.1:1,nats://worker:Sup3r%zz@127.0.0.1:4222", "NATS_URL", "Sup3r"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=http://u:Sup3r#pw@collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT", "Sup3r"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://u:Sup3r%zz@collector:4318/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "Sup3r"},
	} {
		cmd := exec.Command(workerBin)
		cmd.Env = append(os.Environ(), tt.env, "HTTP_ADDR=127.0.0.1:0", "NATS_LISTEN=127.0.0.1:0", "NATS_STORE_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s: the worker started", tt.env)
			continue
		}
		if strings.Contains(string(out), tt.secret) || strings.Contains(string(out), "pw@") || !strings.Contains(string(out), tt.name) {
			t.Errorf("%s: output %q", tt.env, out)
		}
	}
}
