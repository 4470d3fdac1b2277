package workertest_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/workertest"
)

func TestOutputWaitsForALineOnEitherStream(t *testing.T) {
	cmd := exec.Command("sh", "-c", `echo one; echo 'addr=127.0.0.1:1234' >&2; read x || true`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := workertest.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	// The child still runs (it waits on stdin) while the line is found.
	if line := out.WaitLine(t, 10*time.Second, "addr="); line != "addr=127.0.0.1:1234" {
		t.Fatalf("line %q", line)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	<-out.Done()
	if got := out.String(); got != "one\naddr=127.0.0.1:1234" {
		t.Fatalf("output %q", got)
	}
}

func TestOutputGivesUpWhenTheProcessEnds(t *testing.T) {
	out, err := workertest.StartProcess(exec.Command("sh", "-c", "echo bye"))
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeT{TB: t}
	start := time.Now()
	func() {
		defer func() { _ = recover() }()
		out.WaitLine(ft, time.Minute, "never written")
	}()
	if !strings.Contains(ft.msg, "ended without") || !strings.Contains(ft.msg, "bye") {
		t.Fatalf("message %q", ft.msg)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("gave up after %s, not when the output ended", el)
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
