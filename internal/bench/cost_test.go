package bench

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCPUReaders(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	total0, steal0 := cpuTicks()
	stolen := stealMeter()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); { // spin: CPU time to measure
	}
	total, steal := cpuTicks()
	if total <= total0 || steal < steal0 || steal > total {
		t.Errorf("/proc/stat: total %d→%d, steal %d→%d", total0, total, steal0, steal)
	}
	if s := stolen(); s < 0 || s > 1 {
		t.Errorf("steal share %v", s)
	}
}

func TestMeterAndCosts(t *testing.T) {
	var out strings.Builder
	b := &run{o: Options{Out: &out}, rep: &Report{}}
	client := time.Second
	m := b.meter(func() time.Duration { return client })
	client += 2 * time.Second // 2 s over 100,000 jobs
	var tp Throughput
	m.done(&tp, 100000)
	if tp.ClientCPU != 20*time.Microsecond {
		t.Errorf("client CPU %s per job, want 20µs", tp.ClientCPU)
	}
	if tp.BrokerCPU != 0 {
		t.Errorf("broker CPU %s with no broker to read", tp.BrokerCPU)
	}

	round := func(broker, client time.Duration, steal float64) Throughput {
		return Throughput{Jobs: 1, PerSec: 1, Elapsed: time.Second, ResultBytes: 600, BrokerCPU: broker, ClientCPU: client, Steal: steal}
	}
	b.rep.RawRounds = []Throughput{round(30*time.Microsecond, 10*time.Microsecond, 0), round(28*time.Microsecond, 12*time.Microsecond, 0.2), round(29*time.Microsecond, 11*time.Microsecond, 0)}
	b.rep.WarmRounds = []Throughput{round(34*time.Microsecond, 20*time.Microsecond, 0), round(33*time.Microsecond, 21*time.Microsecond, 0), round(35*time.Microsecond, 22*time.Microsecond, -1)}
	b.costs()
	if b.rep.RawCPU != 40*time.Microsecond || b.rep.WarmCPU != 55*time.Microsecond {
		t.Errorf("CPU per job raw %s, worker %s; want 40µs and 55µs (29+11, 34+21)", b.rep.RawCPU, b.rep.WarmCPU)
	}
	for _, want := range []string{"raw loop 40.0 µs (broker 29.0 + loop 11.0)", "worker 55.0 µs (broker 34.0 + worker 21.0)", "took up to 20 % of this machine's CPU"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if s := round(30*time.Microsecond, 10*time.Microsecond, 0.2).String(); !strings.Contains(s, "client CPU 10.0 µs/job, 20 % stolen") {
		t.Errorf("round printed as %q", s)
	}
	if s := round(0, 0, 0.001).String(); strings.Contains(s, "stolen") || strings.Contains(s, "CPU") {
		t.Errorf("unmeasured costs printed: %q", s)
	}
}
