package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

// gather publishes a request to subject and collects every reply that
// arrives within a second (discovery subjects answer once per service).
func gather(t *testing.T, nc *nats.Conn, subject string) [][]byte {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		m, err := sub.NextMsg(time.Second)
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Data)
	}
}

// The worker registers with the NATS service API: discovery (PING, INFO,
// STATS) lists it with its version, and its endpoints answer.
func TestWorkerIsANATSService(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.WorkerID = "svc-1"; c.CircuitBreakerThreshold = 2 })
	nc := workertest.Connect(t, h.nats.URL())

	pings := gather(t, nc, "$SRV.PING."+server.ServiceName)
	if len(pings) != 1 {
		t.Fatalf("%d answers to PING, want 1", len(pings))
	}
	var ping micro.Ping
	if err := json.Unmarshal(pings[0], &ping); err != nil {
		t.Fatal(err)
	}
	if ping.Name != server.ServiceName || ping.Version != server.ServiceVersion(server.Version) || ping.ID == "" ||
		ping.Metadata[server.MetaVersion] != server.Version || ping.Metadata[server.MetaWorkerID] != "svc-1" {
		t.Fatalf("ping %+v", ping)
	}
	infos := gather(t, nc, "$SRV.INFO."+server.ServiceName+"."+ping.ID)
	var info micro.Info
	if len(infos) != 1 || json.Unmarshal(infos[0], &info) != nil {
		t.Fatalf("INFO answers %q", infos)
	}
	subjects := map[string]bool{}
	for _, e := range info.Endpoints {
		subjects[e.Subject] = true
	}
	for _, e := range []string{server.EndpointStatus, server.EndpointBreakerReset, server.EndpointCacheReport} {
		if !subjects[server.EndpointSubject(ping.ID, e)] {
			t.Fatalf("endpoint %s missing from %+v", e, info.Endpoints)
		}
	}

	status := func() server.Status {
		t.Helper()
		m, err := nc.Request(server.EndpointSubject(ping.ID, server.EndpointStatus), nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var st server.Status
		if err := json.Unmarshal(m.Data, &st); err != nil {
			t.Fatalf("status %s: %v", m.Data, err)
		}
		return st
	}
	h.publish("default", wire("svc-job-1", "task", "pattern", 0.5))
	h.wait(10*time.Second, "svc-job-1")
	st := status()
	if st.WorkerID != "svc-1" || st.Version != server.Version || !st.Ready || st.Breaker != "closed" || st.Cache.TotalRequests == 0 {
		t.Fatalf("status %+v", st)
	}

	// A failing langextract opens the breaker; the endpoint closes it.
	h.le.SetFaults(langextractd.Faults{Rate503: 1})
	for i := 0; i < 4; i++ {
		h.publish("default", wire("svc-fail-"+string(rune('a'+i)), "task "+string(rune('a'+i)), "other pattern", 0.5))
	}
	eventually.True(t, 20*time.Second, func() bool { return status().Breaker == "open" }, "the breaker open")
	h.le.SetFaults(langextractd.Faults{})
	m, err := nc.Request(server.EndpointSubject(ping.ID, server.EndpointBreakerReset), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply server.BreakerReply
	if err := json.Unmarshal(m.Data, &reply); err != nil || reply.State != "closed" {
		t.Fatalf("reset answered %s (%v)", m.Data, err)
	}
	if st := status(); st.Breaker != "closed" {
		t.Fatalf("after reset: %+v", st)
	}
	m, err = nc.Request(server.EndpointSubject(ping.ID, server.EndpointCacheReport), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		TotalRequests uint64 `json:"total_requests"`
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.TotalRequests == 0 {
		t.Fatalf("cache report %s (%v)", m.Data, err)
	}
	statsAnswers := gather(t, nc, "$SRV.STATS."+server.ServiceName)
	var stats micro.Stats
	if len(statsAnswers) != 1 || json.Unmarshal(statsAnswers[0], &stats) != nil {
		t.Fatalf("STATS answers %q", statsAnswers)
	}
	served := 0
	for _, e := range stats.Endpoints {
		served += e.NumRequests
	}
	if served < 4 {
		t.Fatalf("stats count %d requests: %+v", served, stats.Endpoints)
	}

	// A stopped worker leaves the listing.
	h.stop()
	if pings := gather(t, nc, "$SRV.PING."+server.ServiceName); len(pings) != 0 {
		t.Fatalf("a stopped worker still answers: %q", pings)
	}
}

// Under deployments/nats/nats.conf the operator reaches the workers'
// service API and the producer does not.
func TestServiceAPIIsTheOperators(t *testing.T) {
	url := projectNATS(t)
	projectWorker(t, url)

	operator := workertest.Connect(t, url, nats.UserInfo("operator", "o-pw"))
	pings := gather(t, operator, "$SRV.PING."+server.ServiceName)
	if len(pings) != 1 {
		t.Fatalf("the operator got %d answers to PING", len(pings))
	}
	var ping micro.Ping
	_ = json.Unmarshal(pings[0], &ping)
	if _, err := operator.Request(server.EndpointSubject(ping.ID, server.EndpointStatus), nil, 5*time.Second); err != nil {
		t.Fatalf("operator's status request: %v", err)
	}

	denied := make(chan error, 1)
	producer := workertest.Connect(t, url, nats.UserInfo("producer", "p-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case denied <- err:
			default:
			}
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := producer.RequestWithContext(ctx, server.EndpointSubject(ping.ID, server.EndpointBreakerReset), nil)
	if err == nil {
		t.Fatal("the producer reset a worker's breaker")
	}
	select {
	case perr := <-denied:
		if !errors.Is(perr, nats.ErrPermissionViolation) {
			t.Fatalf("producer's error %v", perr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no permission violation for the producer (request error %v)", err)
	}
}
