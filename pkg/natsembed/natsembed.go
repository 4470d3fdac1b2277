// Package natsembed starts a NATS server with JetStream inside the process:
// the worker's out-of-the-box mode (NATS_URL empty) and the test suites'
// real server.
package natsembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server. The zero value listens on
// 127.0.0.1:4222 and stores JetStream data under the OS temp directory.
type Options struct {
	Host string // default 127.0.0.1
	// Port: 0 means 4222; -1 picks a free port (tests).
	Port     int
	StoreDir string // JetStream store; "" means $TMPDIR/hybridscore-nats
	// SyncAlways fsyncs every JetStream write before acknowledging it. Off,
	// the server syncs every two minutes (its default): an acknowledged
	// message survives a process crash but not a power loss or OS crash.
	SyncAlways bool
	// MonitorPort serves /healthz, /varz, /jsz when > 0.
	MonitorPort int
	// ReadyTimeout bounds the start; 0 means 10 s.
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	if o.StoreDir == "" {
		o.StoreDir = filepath.Join(os.TempDir(), "hybridscore-nats")
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(o.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("natsembed: store directory: %w", err)
	}
	opts := &server.Options{
		ServerName: "hybridscore-embedded",
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		NoSigs:     true,
		MaxPayload: 8 << 20,
		HTTPHost:   o.Host,
		HTTPPort:   o.MonitorPort,
	}
	if o.MonitorPort <= 0 {
		opts.HTTPPort = 0
		opts.HTTPHost = ""
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(o.ReadyTimeout) {
		s.Shutdown()
		return nil, errors.New("natsembed: server not ready (is the port in use?)")
	}
	return &Server{s}, nil
}

// URL returns the client URL.
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
