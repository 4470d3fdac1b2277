package bench

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hybridscore/hybridscore/internal/cputime"
)

// brokerCPU returns a reader of the CPU time (user and system) used so far
// by the nats-server process that listens on natsURL's port on this
// machine, or nil when there is none to be found (an embedded server, a
// remote one). The broker's CPU per job is what a worker's design costs the
// server, apart from the worker's own CPU.
func brokerCPU(natsURL string) func() time.Duration {
	u, err := url.Parse(strings.Split(natsURL, ",")[0])
	if err != nil || u.Port() == "" {
		return nil
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil
	}
	pid := listener(port)
	if pid == 0 {
		return nil
	}
	return cputime.Process(pid)
}

// cpuTicks reads the machine's CPU time so far from /proc/stat: all of it
// and what the hypervisor stole (given to other guests while this one had
// work), in ticks.
func cpuTicks() (total, steal int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i := 1; i <= 8; i++ { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseInt(f[i], 10, 64)
		total += v
	}
	steal, _ = strconv.ParseInt(f[8], 10, 64)
	return total, steal
}

// listener is the process listening on TCP port, or 0.
func listener(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // LISTEN
				continue
			}
			if i := strings.LastIndexByte(fs[1], ':'); i >= 0 && strings.EqualFold(fs[1][i+1:], fmt.Sprintf("%04X", port)) {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}
