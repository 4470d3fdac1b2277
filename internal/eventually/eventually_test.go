package eventually_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/eventually"
)

func TestWaitReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	err := eventually.Wait(5*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("err %v after %d tries, want nil after 3", err, n.Load())
	}
}

func TestWaitGivesLastError(t *testing.T) {
	last := errors.New("still down")
	start := time.Now()
	if err := eventually.Wait(100*time.Millisecond, func() error { return last }); !errors.Is(err, last) {
		t.Fatalf("err %v, want %v", err, last)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("gave up before the timeout")
	}
}

func TestStopEndsTheWait(t *testing.T) {
	exited := errors.New("child exited")
	start := time.Now()
	if err := eventually.Wait(10*time.Second, func() error { return eventually.Stop(exited) }); err != exited {
		t.Fatalf("err %v, want %v", err, exited)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Stop did not end the wait")
	}
}

func TestTrueFailsTheTest(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		eventually.True(ft, 50*time.Millisecond, func() bool { return false }, "queue %s drained", "jobs")
	}()
	if ft.msg != "not within 50ms: queue jobs drained" {
		t.Fatalf("message %q", ft.msg)
	}
}

type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}
