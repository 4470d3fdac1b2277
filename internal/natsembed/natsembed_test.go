package natsembed_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hybridscore/hybridscore/internal/natsembed"
)

func TestNonLoopbackNeedsAuthentication(t *testing.T) {
	if _, err := natsembed.Start(natsembed.Options{Host: "0.0.0.0", Port: -1, StoreDir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "without authentication") {
		t.Fatalf("listening on every address without authentication: %v", err)
	}
	s, err := natsembed.Start(natsembed.Options{Host: "0.0.0.0", Port: -1, StoreDir: t.TempDir(), User: "worker", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	port := s.Addr().String()[strings.LastIndexByte(s.Addr().String(), ':')+1:]
	if nc, err := nats.Connect("nats://127.0.0.1:" + port); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	nc, err := nats.Connect("nats://127.0.0.1:"+port, nats.UserInfo("worker", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

func TestDefaultStoreDirIsPerUser(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/srv/state")
	if d := natsembed.DefaultStoreDir(); d != "/srv/state/hybridscore/nats" {
		t.Fatalf("store %s", d)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d := natsembed.DefaultStoreDir(); d != "/home/u/.local/state/hybridscore/nats" {
		t.Fatalf("store %s", d)
	}
}

// A second embedded server on a taken port (a second worker started on
// the defaults) says so at once, not after ReadyTimeout.
func TestPortInUseIsSaidAtOnce(t *testing.T) {
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	addr := s.Addr().String()
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	start := time.Now()
	_, err = natsembed.Start(natsembed.Options{Port: port, StoreDir: t.TempDir()})
	if !errors.Is(err, natsembed.ErrPortInUse) || time.Since(start) > time.Second {
		t.Fatalf("second server on %s: %v after %s", addr, err, time.Since(start))
	}
}

// Two embedded servers on one store directory would both write its
// JetStream files: the second is refused, and once the first is shut down
// the directory is free again.
func TestOneServerPerStoreDirectory(t *testing.T) {
	dir := t.TempDir()
	first, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir}); !errors.Is(err, natsembed.ErrStoreInUse) {
		t.Fatalf("a second server on %s: %v, want ErrStoreInUse", dir, err)
	}
	first.Shutdown()
	again, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	again.Stop()
}
