package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultWorkerBin returns the worker executable the bench starts against
// an external server: `worker` next to this program's own executable (where
// `make build` puts both), else `worker` on $PATH.
func DefaultWorkerBin() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "worker")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("worker")
	if err != nil {
		return "", errors.New("no worker executable next to this program or on $PATH: build it (make build) or give --worker-bin")
	}
	return p, nil
}

// child is a worker process started by the bench.
type child struct {
	cmd    *exec.Cmd
	out    *tail
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
	peakMB float64       // VmHWM read just before it was stopped
}

// cacheEntries is the in-memory cache of the bench's workers unless
// SEMANTIC_CACHE_MAX_SIZE says otherwise: every text of a run, so that the
// interactive jobs of the mixed scenario stay warm behind a cold bulk
// backlog. The cold scenarios' resident memory includes what it holds
// (about 2 KiB a text).
const cacheEntries = 200000

// cacheSize is the in-memory cache a bench worker process gets: the
// caller's SEMANTIC_CACHE_MAX_SIZE, else cacheEntries.
func cacheSize() string {
	if v := os.Getenv("SEMANTIC_CACHE_MAX_SIZE"); v != "" {
		return v
	}
	return strconv.Itoa(cacheEntries)
}

// childEnv is a worker process's environment (see startChild); a variable
// set twice takes its last value.
func (b *run) childEnv(warmFile string) []string {
	env := []string{"LOG_LEVEL=warn"}
	if warmFile != "" {
		env = append(env, "SEMANTIC_CACHE_WARM_FILE="+warmFile)
	}
	env = append(env, os.Environ()...)
	// After the caller's: an empty SEMANTIC_CACHE_MAX_SIZE gets the
	// bench's size too, the one the bench reports.
	env = append(env, "SEMANTIC_CACHE_MAX_SIZE="+cacheSize(), "NATS_URL="+b.url, "HTTP_ADDR=127.0.0.1:0")
	if b.o.Concurrency > 0 {
		env = append(env, "WORKER_CONCURRENCY="+strconv.Itoa(b.o.Concurrency))
	}
	return env
}

// startChild starts the worker executable with no arguments (the consumer
// pool) against the bench's server. Its environment: defaults the caller's
// environment may override (LOG_LEVEL=warn, the warm file), then the
// caller's, then the cache size (cacheSize) and what the bench must
// control (NATS_URL, HTTP_ADDR on a free loopback port, and
// WORKER_CONCURRENCY when --concurrency is given).
func (b *run) startChild(warmFile string) (*child, error) {
	c := &child{cmd: exec.Command(b.o.WorkerBin), out: &tail{max: 16 << 10}, exited: make(chan struct{})}
	c.cmd.Env, c.cmd.Stdout, c.cmd.Stderr = b.childEnv(warmFile), c.out, c.out
	orphanGuard(c.cmd)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("worker %s: %w", b.o.WorkerBin, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// dead is closed when the child has exited (before it was asked to).
func (c *child) dead() <-chan struct{} { return c.exited }

// diedError describes an early exit, with the end of its output.
func (c *child) diedError() error {
	return fmt.Errorf("worker exited early (%v); its output ends with:\n%s", c.err, c.out)
}

// stop reads the child's peak resident set, sends SIGTERM and waits for it
// to drain and exit (SIGKILL after a minute). A non-zero exit is an error.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return c.diedError()
	default:
	}
	c.peakMB = procStatusMB("/proc/"+strconv.Itoa(c.cmd.Process.Pid)+"/status", "VmHWM:")
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("worker did not exit within a minute of SIGTERM; its output ends with:\n%s", c.out)
	}
	if c.err != nil {
		return fmt.Errorf("worker: %v; its output ends with:\n%s", c.err, c.out)
	}
	return nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimRight(string(t.b), "\n")
}
