// Package workertest starts the real pieces tests need: an embedded NATS
// server with JetStream and an in-process worker, both stopped at cleanup,
// and reads a child process's output while it runs (Output).
package workertest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/server"
)

// NATS starts an embedded NATS server on a free port with its store in a
// test directory.
func NATS(t testing.TB) *natsembed.Server {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	return ns
}

// NATSWith runs a nats-server with options of the test's own (users and
// permissions, a cluster, a configuration file's) until the test ends.
func NATSWith(t testing.TB, o *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// Worker runs an in-process worker against natsURL with the default
// configuration (HTTP on a free loopback port), changed by mutate. stop
// drains it; it also runs at cleanup.
func Worker(t testing.TB, natsURL string, mutate func(*config.Config)) (s *server.Server, stop func()) {
	t.Helper()
	cfg := config.Defaults()
	cfg.NATSURL, cfg.HTTPAddr, cfg.LogLevel = natsURL, "127.0.0.1:0", "error"
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, zap.NewNop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return s, stop
}

// Buffer is a bytes.Buffer safe for concurrent writers (a logger); it is
// also a zapcore.WriteSyncer. A child process's output goes through Output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Sync does nothing: the data is already in memory.
func (b *Buffer) Sync() error { return nil }

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Connect connects to the NATS server at url, closed at cleanup.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
