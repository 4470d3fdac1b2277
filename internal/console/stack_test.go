package console_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/console"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/fake/langextractd"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

const adminToken = "console-test-token"

// stack is a real NATS server, workers against it, and a console served
// over HTTP.
type stack struct {
	nats    *natsembed.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	client  *producer.Client
	console *console.Console
	url     string
	workers []*server.Server
}

// newStack starts NATS and the console; workers come with addWorker.
func newStack(t *testing.T) *stack {
	t.Helper()
	ns := workertest.NATS(t)
	st := &stack{nats: ns, nc: workertest.Connect(t, ns.URL())}
	var err error
	if st.js, err = jetstream.New(st.nc); err != nil {
		t.Fatal(err)
	}
	if st.client, err = producer.NewClient(workertest.Connect(t, ns.URL())); err != nil {
		t.Fatal(err)
	}
	if st.console, err = console.New(console.Config{NC: workertest.Connect(t, ns.URL()), Token: adminToken, TallyEvery: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); st.console.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	hs := httptest.NewServer(st.console.Handler())
	t.Cleanup(hs.Close)
	st.url = hs.URL
	return st
}

// addWorker runs a worker named id calling the langextract server le.
func (st *stack) addWorker(t *testing.T, id string, le *langextractd.Server) *server.Server {
	t.Helper()
	hs := httptest.NewServer(le)
	t.Cleanup(hs.Close)
	t.Cleanup(le.Close)
	s, _ := workertest.Worker(t, st.nats.URL(), func(c *config.Config) {
		c.WorkerID = id
		c.LangextractURL = hs.URL
		c.LangextractTimeout = 0.5
		c.LangextractMaxRetries = 1
		c.CircuitBreakerThreshold = 2
		c.MaxDeliver = 2
		c.RetryBackoff = 100 * time.Millisecond
	})
	eventually.True(t, 10*time.Second, s.Ready, "worker %s ready", id)
	st.workers = append(st.workers, s)
	return s
}

// provision creates the streams and consumers without a worker.
func (st *stack) provision(t *testing.T) {
	t.Helper()
	if _, err := topology.Provision(context.Background(), st.js, topology.Config{}); err != nil {
		t.Fatal(err)
	}
}

// workerStatus asks the service API for the worker named id.
func (st *stack) workerStatus(t *testing.T, id string) (console.Worker, bool) {
	t.Helper()
	ws, err := console.Workers(context.Background(), st.nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Name() == id {
			return w, true
		}
	}
	return console.Worker{}, false
}
