package main_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every WORKER_PREFETCH the worker accepts serves both classes: with a bulk
// backlog held, interactive jobs are still pulled and answered. A value too
// small to leave interactive jobs room beside bulk's share is refused at
// start, naming the variable.
func TestEveryAcceptedPrefetchServesBothClasses(t *testing.T) {
	accepted := 0
	for p := 1; p <= 4; p++ {
		// An unreachable NATS: an accepted configuration fails on the
		// connection, a refused one before it.
		cmd := exec.Command(workerBin)
		cmd.Env = append(os.Environ(), "WORKER_PREFETCH="+strconv.Itoa(p), "NATS_URL=nats://127.0.0.1:1", "HTTP_ADDR=127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("WORKER_PREFETCH=%d: the worker ran without NATS", p)
		}
		if strings.Contains(string(out), "WORKER_PREFETCH") {
			continue
		}
		accepted++
		t.Run("WORKER_PREFETCH="+strconv.Itoa(p), func(t *testing.T) {
			c := newCluster(t)
			startWorker(t, c.ns.URL(), c.leURL, "WORKER_PREFETCH="+strconv.Itoa(p), "WORKER_CONCURRENCY=2")
			c.publishBulk("prefetch-bulk", 300)
			live := c.publishBatch("prefetch-live", 20)
			c.waitAll("prefetch-live", live, 30*time.Second)
		})
	}
	if accepted == 0 {
		t.Fatal("no WORKER_PREFETCH from 1 to 4 accepted")
	}
}
