package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// publishN publishes n jobs of distinct texts to prefix+lane.
func (h *harness) publishN(prefix, lane string, n int) []string {
	h.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%05d", lane, i)
		data, _ := json.Marshal(wire(ids[i], "task "+ids[i], "pattern "+ids[i], 0.5))
		if _, err := h.client.JS.PublishMsgAsync(&nats.Msg{Subject: prefix + lane, Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{ids[i]}}}); err != nil {
			h.t.Fatal(err)
		}
	}
	select {
	case <-h.client.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		h.t.Fatal("jobs not stored")
	}
	return ids
}

// resultsOn counts the results delivered on a lane's results subject.
func (h *harness) resultsOn(ids []string) int {
	n := 0
	for _, id := range ids {
		if h.count(id) > 0 {
			n++
		}
	}
	return n
}

// Interactive jobs published behind a bulk backlog are answered while most
// of the backlog still waits: they overtake it.
func TestInteractiveJobsOvertakeABulkBacklog(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.WorkerConcurrency = 4 })
	h.le.SetFaults(langextractd.Faults{Latency: 5 * time.Millisecond})
	bulk := h.publishN(topology.BulkPrefix, "backlog", 3000)
	eventually.True(t, 30*time.Second, func() bool { return h.resultsOn(bulk) >= 50 }, "50 bulk results")
	live := h.publishN(topology.JobsPrefix, "live", 20)
	h.wait(30*time.Second, live...)
	done := h.resultsOn(bulk)
	t.Logf("all 20 interactive jobs answered with %d of 3000 bulk jobs done", done)
	if done > 1500 {
		t.Fatalf("interactive jobs waited for %d bulk jobs", done)
	}
	h.wait(120*time.Second, bulk...)
}

// While interactive jobs saturate the worker, bulk jobs still progress at
// about their share, and all of them when interactive ones are done.
func TestBulkKeepsItsShareWhileInteractiveSaturates(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.WorkerConcurrency = 4; c.WorkerBulkShare = 0.2 })
	h.le.SetFaults(langextractd.Faults{Latency: 5 * time.Millisecond})
	live := h.publishN(topology.JobsPrefix, "busy", 2000)
	bulk := h.publishN(topology.BulkPrefix, "share", 1000)
	eventually.True(t, 60*time.Second, func() bool { return h.resultsOn(live) >= 1000 }, "1000 interactive results")
	b, l := h.resultsOn(bulk), h.resultsOn(live)
	frac := float64(b) / float64(b+l)
	t.Logf("with interactive saturating: %d interactive, %d bulk results (bulk %.2f, share 0.20)", l, b, frac)
	if frac < 0.1 || frac > 0.35 {
		t.Fatalf("bulk got %.2f of the work, want about 0.20", frac)
	}
	h.wait(120*time.Second, append(live, bulk...)...)
	eventually.True(t, 10*time.Second, func() bool {
		c := h.consumerInfoOf(topology.BulkStream, topology.BulkConsumer)
		return c.NumPending == 0 && c.NumAckPending == 0
	}, "the bulk consumer drained")
}

// A light interactive trickle does not hold bulk jobs to a share of the
// trickle: the worker is far from saturated, its pool says how much more it
// could do, and a bulk backlog drains while interactive jobs keep arriving
// (and keep being answered).
func TestBulkDrainsUnderALightInteractiveTrickle(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.WorkerBulkShare = 0.1 })
	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	t.Cleanup(halt) // also when the test fails early
	sent := make(chan int, 1)
	go func() {
		// About 20 interactive jobs a second, for as long as the test waits.
		n := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		defer func() { sent <- n }()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("trickle-%05d", n)
			data, _ := json.Marshal(wire(id, "trickle task", "trickle pattern", 0.5))
			if _, err := h.client.JS.PublishMsg(context.Background(), &nats.Msg{Subject: topology.JobsPrefix + "trickle", Data: data,
				Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}); err != nil {
				return // the test is over
			}
			n++
		}
	}()
	// The trickle first, so all the worker has seen is about 20 jobs a
	// second: a share of that (with the floor of 10/s) would take five
	// minutes over 3000 bulk jobs. They drain while the trickle goes on.
	eventually.True(t, 30*time.Second, func() bool { return h.count("trickle-00060") > 0 }, "60 trickle jobs answered")
	bulk := h.publishN(topology.BulkPrefix, "drain", 3000)
	eventually.True(t, 60*time.Second, func() bool { return h.resultsOn(bulk) == len(bulk) }, "all 3000 bulk jobs answered during the trickle")
	halt()
	n := <-sent
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("trickle-%05d", i)
	}
	h.wait(30*time.Second, ids...)
	t.Logf("3000 bulk jobs drained while %d interactive jobs trickled in", n)
}

func (h *harness) consumerInfoOf(stream, name string) *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.client.JS.Consumer(ctx, stream, name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}
