package cputime_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/cputime"
)

func TestReaders(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	proc := cputime.Process(os.Getpid())
	p0, s0 := proc(), cputime.Self()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); { // spin: CPU time to measure
	}
	if d := proc() - p0; d < 100*time.Millisecond {
		t.Errorf("/proc/<pid>/stat: %s of CPU over 300 ms of spinning", d)
	}
	if d := cputime.Self() - s0; d < 100*time.Millisecond {
		t.Errorf("getrusage: %s of CPU over 300 ms of spinning", d)
	}
	if cputime.Process(1<<30)() != 0 {
		t.Error("a process that does not exist used CPU")
	}
}

func ExampleSelf() {
	start := cputime.Self()
	sum := 0
	for i := range 1_000_000 {
		sum += i
	}
	_ = cputime.Self() - start // the CPU the loop cost this process
	_ = sum
}
