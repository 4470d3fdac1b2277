package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/workertest"
)

// publisher console serves the console until SIGTERM; --probe checks it.
func TestConsoleCommand(t *testing.T) {
	ns := workertest.NATS(t)
	cmd := exec.Command(bin, "console", "--nats-url", ns.URL(), "--listen", "127.0.0.1:0")
	cmd.Env = append(cmd.Environ(), "ADMIN_TOKEN=secret-console-token")
	out, err := workertest.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var line struct{ Addr string }
	if err := json.Unmarshal([]byte(out.WaitLine(t, 30*time.Second, "console listening")), &line); err != nil || line.Addr == "" {
		t.Fatalf("no address logged (%v):\n%s", err, out)
	}
	resp, err := http.Get(line.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Job classes") {
		t.Fatalf("overview answered %d:\n%s", resp.StatusCode, body)
	}
	hostPort := strings.TrimPrefix(line.Addr, "http://")
	if o, err := run(t, "console", "--probe", "--listen", hostPort); err != nil {
		t.Fatalf("probe of a running console: %v\n%s", err, o)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("console after SIGTERM: %v\n%s", err, out)
	}
	if _, err := run(t, "console", "--probe", "--listen", hostPort); err == nil {
		t.Fatal("probe of a stopped console succeeded")
	}
	if strings.Contains(out.String(), "secret-console-token") {
		t.Fatalf("the admin token is in the output:\n%s", out)
	}
}
