// Package natsembed starts a NATS server with JetStream inside the process:
// the worker's out-of-the-box mode (NATS_URL empty) and the test suites'
// real server.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrPortInUse is Start's error when its address is taken, most often by
// another embedded server.
var ErrPortInUse = errors.New("the port is in use")

// ErrStoreInUse is Start's error when another embedded server (another
// worker on this machine) holds the store directory: two servers writing
// one JetStream store corrupt it.
var ErrStoreInUse = errors.New("the store directory is in use by another embedded server")

// Options configure the embedded server. The zero value listens on
// 127.0.0.1:4222 without authentication and stores JetStream data in the
// user's state directory.
type Options struct {
	// Host is the listen address, default 127.0.0.1. Any address other than
	// a loopback one is refused unless User and Password are set: an
	// embedded server without authentication must not be reachable from
	// elsewhere.
	Host string
	// Port: 0 means 4222; -1 picks a free port (tests).
	Port int
	// User and Password, when set, are required of every client.
	User, Password string
	// StoreDir is the JetStream store; "" means DefaultStoreDir().
	StoreDir string
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
	lock   *os.File // holds the store directory's lock until Shutdown
	unlock sync.Once
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	if !loopback(o.Host) && (o.User == "" || o.Password == "") {
		return nil, fmt.Errorf("natsembed: refusing to listen on %s without authentication (set a user and password, or listen on 127.0.0.1)", o.Host)
	}
	if o.StoreDir == "" {
		o.StoreDir = DefaultStoreDir()
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	if o.Port > 0 {
		// Said at once: the server itself only fails to become ready,
		// after ReadyTimeout, with the reason in its log.
		addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("natsembed: %w: %w", ErrPortInUse, err)
		}
		_ = l.Close()
	}
	if err := os.MkdirAll(o.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("natsembed: store directory: %w", err)
	}
	lock, err := lockStore(o.StoreDir)
	if err != nil {
		return nil, err
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
		Username:   o.User,
		Password:   o.Password,
	}
	if o.MonitorPort <= 0 {
		opts.HTTPPort = 0
		opts.HTTPHost = ""
	}
	s, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(o.ReadyTimeout) {
		s.Shutdown()
		lock.Close()
		return nil, errors.New("natsembed: server not ready (is the port in use?)")
	}
	return &Server{Server: s, lock: lock}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DefaultStoreDir is where the embedded server keeps JetStream data by
// default: $XDG_STATE_HOME/hybridscore/nats, else ~/.local/state/hybridscore/nats
// (private to the user, and kept across reboots, unlike the temp
// directory), else a per-user directory under the temp directory.
func DefaultStoreDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hybridscore", "nats")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "hybridscore", "nats")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("hybridscore-nats-%d", os.Getuid()))
}

// URL returns the client URL.
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Shutdown shuts the server down and releases its store directory.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.unlock.Do(func() {
		if s.lock != nil {
			s.lock.Close() // and with it the lock
		}
	})
}
