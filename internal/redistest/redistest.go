// Package redistest runs a real redis-server process for tests, one per
// test, on a free loopback port, and can stop and restart it on the same
// port to simulate an outage.
package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server child process.
type Server struct {
	t    testing.TB
	Addr string
	opts Options
	port int
	cmd  *exec.Cmd
}

// Required reports whether tests must fail, not skip, without Redis (CI
// sets REQUIRE_REDIS=1).
func Required() bool { return os.Getenv("REQUIRE_REDIS") == "1" || os.Getenv("CI") == "true" }

// Options secure a test server.
type Options struct {
	Password string // requirepass
	// TLS serves TLS only (no plain port), with these PEM files; clients
	// are not asked for certificates.
	TLSCert, TLSKey, TLSCA string
}

// Start starts redis-server, or skips the test when it is not installed
// (fails instead when Required).
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts redis-server with a password and/or TLS.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if Required() {
			t.Fatalf("redis-server not found and REQUIRE_REDIS/CI demands it: %v", err)
		}
		t.Skip("redis-server not installed (apt-get install redis-server); set REQUIRE_REDIS=1 to fail instead")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), opts: o}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server (an abrupt outage). Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and waits until it
// answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--enable-debug-command", "yes", "--dir", s.t.TempDir()}
	ro := &redis.Options{Addr: s.Addr, Password: s.opts.Password}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	if s.opts.TLSCert != "" {
		args[1] = "0" // no plain port
		args = append(args, "--tls-port", strconv.Itoa(s.port), "--tls-cert-file", s.opts.TLSCert, "--tls-key-file", s.opts.TLSKey,
			"--tls-ca-cert-file", s.opts.TLSCA, "--tls-auth-clients", "no")
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(s.opts.TLSCA)
		if err != nil {
			s.t.Fatal(err)
		}
		pool.AppendCertsFromPEM(ca)
		ro.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(ro)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client configured the way the worker configures its own
// (context timeouts honoured, short dial and read timeouts).
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr, ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxRetries: 1, // as the worker: a stale connection after a restart is retried once
	})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// String returns the address.
func (s *Server) String() string { return fmt.Sprintf("redis-server@%s", s.Addr) }
