package workertest

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/eventually"
)

// Output is a child process's stdout and stderr, read line by line from one
// pipe while the child runs, so that a test can wait for a line (a bound
// address, "draining") instead of polling a buffer the child writes into.
type Output struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// StartProcess starts cmd with its stdout and stderr on one pipe and reads
// it until every writer (the child and anything it started) has closed it.
func StartProcess(cmd *exec.Cmd) (*Output, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	// The child has its own copy; ours must go, or the pipe never ends.
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	o := &Output{done: make(chan struct{})}
	go o.read(r)
	return o, nil
}

func (o *Output) read(r *os.File) {
	defer close(o.done)
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			o.mu.Lock()
			o.lines = append(o.lines, strings.TrimSuffix(line, "\n"))
			o.mu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				o.mu.Lock()
				o.lines = append(o.lines, "workertest: reading the output: "+err.Error())
				o.mu.Unlock()
			}
			return
		}
	}
}

// Done is closed once the output has ended: the child has exited and every
// line it wrote is in.
func (o *Output) Done() <-chan struct{} { return o.done }

// Line returns the first line containing substr.
func (o *Output) Line(substr string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.lines {
		if strings.Contains(l, substr) {
			return l, true
		}
	}
	return "", false
}

// WaitLine waits until a line containing substr has been written and
// returns it. It fails the test after timeout, or as soon as the output
// ends without one.
func (o *Output) WaitLine(t testing.TB, timeout time.Duration, substr string) string {
	t.Helper()
	var line string
	var ok bool
	err := eventually.Wait(timeout, func() error {
		// Checked before the line: the last lines arrive before the end.
		ended := o.ended()
		if line, ok = o.Line(substr); ok || ended {
			return nil
		}
		return errNoLine
	})
	switch {
	case err != nil:
		t.Fatalf("no line containing %q within %s in the output:\n%s", substr, timeout, o)
	case !ok:
		t.Fatalf("the output ended without a line containing %q:\n%s", substr, o)
	}
	return line
}

var errNoLine = errors.New("no such line yet")

func (o *Output) ended() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// String returns every line so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}
