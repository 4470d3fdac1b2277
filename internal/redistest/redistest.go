// Package redistest runs a real redis-server process for tests, one per
// test, on a free loopback port, and can stop and restart it on the same
// port to simulate an outage.
//
// redis-server cannot report a port it chose itself, so a port is picked
// free and, should another process take it before redis-server binds it,
// the start is tried again on another.
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

	"github.com/hybridscore/hybridscore/internal/eventually"
)

// Server is a redis-server child process.
type Server struct {
	t      testing.TB
	Addr   string
	opts   Options
	port   int
	cmd    *exec.Cmd
	exited chan error // cmd.Wait's answer
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
	var err error
	for range 5 {
		l, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			t.Fatal(lerr)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		s := &Server{t: t, port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), opts: o}
		if err = s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatal(err)
	return nil
}

// Stop kills the server (an abrupt outage). Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port and waits until it
// answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// start runs redis-server on s.port and waits until it answers PING, or
// returns why it did not (it exited: the port was taken, say).
func (s *Server) start() error {
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
			return err
		}
		pool.AppendCertsFromPEM(ca)
		ro.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(ro)
	defer c.Close()
	err := eventually.Wait(10*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			return eventually.Stop(fmt.Errorf("redis-server on port %d exited (%v): the port may have been taken", s.port, err))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s did not answer: %w", s.Addr, err)
	}
	s.cmd, s.exited = cmd, exited
	return nil
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
