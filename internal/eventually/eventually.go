// Package eventually waits in tests for a condition that real services reach
// in their own time (a message stored, a consumer drained, a port open), so
// that no test asserts after a fixed sleep.
package eventually

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Interval is how often a condition is tried.
const Interval = 20 * time.Millisecond

// True waits until cond returns true and fails the test (t.Fatalf) when it
// has not within timeout. what names the condition in the failure message
// and may carry fmt arguments.
func True(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	if err := Wait(timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}); err != nil {
		t.Fatalf("not within %s: %s", timeout, fmt.Sprintf(what, args...))
	}
}

// NoError waits until try returns nil and fails the test with try's last
// error when it has not within timeout.
func NoError(t testing.TB, timeout time.Duration, try func() error, what string, args ...any) {
	t.Helper()
	if err := Wait(timeout, try); err != nil {
		t.Fatalf("not within %s: %s: %v", timeout, fmt.Sprintf(what, args...), err)
	}
}

// Wait calls try every Interval until it returns nil, and returns nil, or
// until timeout has passed, and returns try's last error. It suits helpers
// that report an error rather than fail a test. An error from Stop ends the
// wait at once (a child process that exited will not come up by waiting).
func Wait(timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		var s stop
		if errors.As(err, &s) {
			return s.err
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(Interval)
	}
}

// Stop wraps err so that Wait gives up at once and returns err.
func Stop(err error) error { return stop{err} }

type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }
func (s stop) Unwrap() error { return s.err }

type notYet struct{}

func (notYet) Error() string { return "condition not met" }

var errNotYet error = notYet{}
