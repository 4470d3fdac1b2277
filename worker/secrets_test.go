package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hybridscore/hybridscore/internal/workertest"
)

// No secret given to the worker — in NATS_URL, NATS_PASSWORD, NATS_TOKEN,
// REDIS_PASSWORD or ADMIN_TOKEN — appears in its logs (debug level), its
// errors, --help, /health or /metrics, through a failed connect, a
// reconnect after a NATS restart and an unreachable Redis.
func TestSecretsNeverAppearInOutput(t *testing.T) {
	const natsPass, redisPass, adminToken, natsToken = "natsS3cret", "redisS3cret", "adminS3cret", "tokenS3cret"
	secrets := []string{natsPass, redisPass, adminToken, natsToken}
	port := workertest.FreePort(t)
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
	url := fmt.Sprintf("nats://worker:%s@127.0.0.1:%d", natsPass, port)
	w := startWorker(t, url, "http://127.0.0.1:1", "LOG_LEVEL=debug", "REDIS_HOST=127.0.0.1", fmt.Sprintf("REDIS_PORT=%d", workertest.FreePort(t)),
		"REDIS_PASSWORD="+redisPass, "ADMIN_TOKEN="+adminToken)
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
	time.Sleep(time.Second) // disconnected, reconnect attempts logged
	ns = start()
	defer ns.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.out.String(), "NATS reconnected") {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect logged:\n%s", w.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
