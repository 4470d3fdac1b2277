package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/console"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

const benchLetters = 100_000

// fillLetters stores n dead letters: reasons and lanes mixed, one in a
// thousand a rare reason, payloads the size of a real job.
func fillLetters(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	ctx := context.Background()
	text := strings.Repeat("a task description of ordinary length ", 4)
	for i := 1; i <= n; i++ {
		reason, lane := consumer.ReasonMaxDeliveries, "default"
		switch {
		case i%1000 == 0:
			reason = "rare"
		case i%3 == 0:
			reason = "invalid_field"
		}
		if i%5 == 0 {
			lane = "rescore"
		}
		id := fmt.Sprintf("bench-%06d", i)
		h := nats.Header{}
		h.Set(consumer.HeaderReason, reason)
		h.Set(consumer.HeaderError, "not finished after 5 deliveries")
		h.Set(consumer.HeaderJobID, id)
		h.Set(consumer.HeaderSubject, topology.JobsPrefix+lane)
		h.Set(consumer.HeaderStreamSeq, strconv.Itoa(i))
		h.Set(consumer.HeaderDelivery, "5")
		data := fmt.Sprintf(`{"job_id":%q,"task_description":%q,"historical_pattern_text":%q,"vector_similarity":0.5}`, id, text, text)
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: topology.DLQPrefix + lane, Data: []byte(data), Header: h}); err != nil {
			b.Fatal(err)
		}
		if i%4000 == 0 || i == n {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
			case <-time.After(time.Minute):
				b.Fatal("publishing the dead letters stalled")
			}
		}
	}
}

// BenchmarkDeadLetterPages serves dead-letter pages from a stream of
// 100,000 letters: the first page, the next one, a page far on, a page of a
// rare reason. Each must be served in 200 ms at most. With
// CONSOLE_BENCH_PUBLISHER naming a publisher binary, it also runs
// `publisher console` as a process against the same stream, serves it the
// same pages, and reports its resident set (CONSOLE_BENCH_SMAPS=1 also logs
// its /proc/<pid>/smaps_rollup: how much of it is the binary's own pages).
func BenchmarkDeadLetterPages(b *testing.B) {
	ns := workertest.NATS(b)
	nc := workertest.Connect(b, ns.URL())
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := topology.Provision(context.Background(), js, topology.Config{}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	fillLetters(b, js, benchLetters)
	b.Logf("%d dead letters stored in %s", benchLetters, time.Since(start).Round(time.Millisecond))

	c, err := console.New(console.Config{NC: workertest.Connect(b, ns.URL())})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	start = time.Now()
	eventually.True(b, 5*time.Minute, func() bool { _, total, ready, _ := c.Counts(); return ready && total == benchLetters }, "the letters counted")
	b.Logf("counted by reason and lane in %s (once, at start)", time.Since(start).Round(time.Millisecond))

	h := c.Handler()
	serve := func(b *testing.B, url string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s answered %d", url, rec.Code)
		}
		return rec.Body.String()
	}
	pages := []struct{ name, url string }{
		{"first", "/deadletters"},
		{"next", "/deadletters?after=50"},
		{"far", "/deadletters?after=90000"},
		{"rare-reason", "/deadletters?reason=rare&after=50000"},
		{"lane", "/deadletters?lane=rescore&after=50000"},
	}
	for _, p := range pages {
		if rows := pageSeqs(serve(b, p.url)); len(rows) == 0 {
			b.Fatalf("%s: an empty page", p.url)
		}
		b.Run(p.name, func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				t := time.Now()
				serve(b, p.url)
				worst = max(worst, time.Since(t))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			if worst > 200*time.Millisecond {
				b.Errorf("%s: a page took %s, over 200 ms", p.url, worst)
			}
		})
	}

	bin := os.Getenv("CONSOLE_BENCH_PUBLISHER")
	if bin == "" {
		return
	}
	b.Run("process", func(b *testing.B) {
		cmd := exec.Command(bin, "console", "--nats-url", ns.URL(), "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "ADMIN_TOKEN=")
		out, err := workertest.StartProcess(cmd)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		var line struct{ Addr string }
		_ = json.Unmarshal([]byte(out.WaitLine(b, 30*time.Second, "console listening")), &line)
		if line.Addr == "" {
			b.Fatalf("no address in the output:\n%s", out)
		}
		fetch := func(url string) time.Duration {
			t := time.Now()
			resp, err := http.Get(line.Addr + url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s answered %d", url, resp.StatusCode)
			}
			return time.Since(t)
		}
		// Counted once before the figures are read: the resident set of a
		// console that has read every letter's headers.
		eventually.True(b, 5*time.Minute, func() bool {
			resp, err := http.Get(line.Addr + "/")
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.Contains(string(body), `<span class="count" id="dead-total">100000</span>`)
		}, "the process counted the letters")
		var worst time.Duration
		for b.Loop() {
			for _, p := range pages {
				worst = max(worst, fetch(p.url))
			}
			worst = max(worst, fetch("/"))
		}
		if os.Getenv("CONSOLE_BENCH_SMAPS") != "" {
			sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", cmd.Process.Pid))
			b.Logf("%s", sm)
		}
		rss, hwm := procStatus(b, cmd.Process.Pid, "VmRSS"), procStatus(b, cmd.Process.Pid, "VmHWM")
		b.Logf("console process: RSS %.1f MB, peak %.1f MB, slowest answer %s", rss, hwm, worst)
		b.ReportMetric(rss, "RSS-MB")
		b.ReportMetric(hwm, "peak-RSS-MB")
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		if hwm > 60 {
			b.Errorf("console peak RSS %.1f MB, over 60 MB", hwm)
		}
	})
}

// procStatus reads a kB figure of /proc/<pid>/status, in MB.
func procStatus(b *testing.B, pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
