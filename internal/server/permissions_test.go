package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// The worker and a producer work under deployments/nats/nats.conf's
// least-privilege users; the worker may not touch streams beyond its own
// needs; a job whose reply subject it may not publish to keeps its result
// on its own subject, not retried and not lost; a reply subject on the
// jobs stream is rejected.
func TestLeastPrivilegeUsers(t *testing.T) {
	url := projectNATS(t)
	projectWorker(t, url)
	ctx := context.Background()

	connect := func(user, pass string) *nats.Conn {
		// Each user's own inbox prefix, as the worker and the publisher set it.
		opts, err := config.NATSAuth{NATSUser: user, NATSPassword: pass}.Options(url)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	client, _ := producer.NewClient(connect("producer", "p-pw"))
	res, err := client.Submit(ctx, "perm", wire("perm-1", "task", "pattern", 0.5), 10*time.Second)
	if err != nil {
		t.Fatalf("producer submit under least privilege: %v", err)
	}
	var r job.Result
	if err := json.Unmarshal(res, &r); err != nil || r.Status != job.StatusScored {
		t.Fatalf("result %s (%v)", res, err)
	}
	// The worker's user cannot delete or purge a stream.
	wjs, _ := jetstream.New(connect("worker", "w-pw"))
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	if err := wjs.DeleteStream(dctx, topology.ResultsStream); err == nil {
		t.Fatal("the worker's user deleted SCORING_RESULTS")
	}
	// A reply subject outside the worker's permissions: NATS refuses the
	// copy, and the answer is stored on the job's own subject, where the
	// producer reads it.
	elsewhere := wire("perm-2", "task", "pattern", 0.5)
	elsewhere.ReplySubject = "billing.invoices.new"
	if _, err := client.Publish(ctx, "perm", elsewhere); err != nil {
		t.Fatal(err)
	}
	eventually.NoError(t, 20*time.Second, func() error {
		res, err := client.Stored(ctx, "perm", "perm-2")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(res, &r); err != nil || r.Status != job.StatusScored {
			return fmt.Errorf("stored %s (%v)", res, err)
		}
		return nil
	}, "perm-2 stored on its own subject")
	// A reply subject that addresses the jobs stream is refused outright.
	loop := wire("perm-3", "task", "pattern", 0.5)
	loop.ReplySubject = "scoring.jobs.perm"
	if _, err := client.Publish(ctx, "perm", loop); err != nil {
		t.Fatal(err)
	}
	ojs, _ := jetstream.New(connect("operator", "o-pw"))
	dlq, err := ojs.OrderedConsumer(ctx, topology.DLQStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter for a reply subject on the jobs stream: %v", err)
	}
	if msg.Headers().Get(consumer.HeaderReason) != job.CodeInvalidField || msg.Headers().Get(consumer.HeaderJobID) != "perm-3" {
		t.Fatalf("dead letter %v", msg.Headers())
	}
}

// Under deployments/nats/nats.conf each user has its own inbox prefix: the
// producer can neither read the replies the worker gets (PubAcks of its
// results, claim lookups, API answers) nor forge them, whatever inbox it
// tries; the worker cannot read the producer's.
func TestInboxesArePrivate(t *testing.T) {
	url := projectNATS(t)
	projectWorker(t, url)
	ctx := context.Background()

	type conn struct {
		nc     *nats.Conn
		denied chan string
	}
	connect := func(user, pass string) conn {
		c := conn{denied: make(chan string, 100)}
		opts, err := config.NATSAuth{NATSUser: user, NATSPassword: pass}.Options(url)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				c.denied <- err.Error()
			}
		}))
		if c.nc, err = nats.Connect(url, opts...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.nc.Close)
		return c
	}
	workerInbox := config.NATSAuth{NATSUser: "worker"}.InboxPrefix(url)
	if workerInbox == "" || workerInbox == nats.InboxPrefix[:len(nats.InboxPrefix)-1] {
		t.Fatalf("the worker's inbox prefix is %q, the default", workerInbox)
	}
	prod := connect("producer", "p-pw")
	// The producer listens on every inbox it might reach: the default one
	// and the worker's.
	var sniffed atomic.Int64
	for _, subject := range []string{"_INBOX.>", workerInbox + ".>"} {
		if _, err := prod.nc.Subscribe(subject, func(*nats.Msg) { sniffed.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	// A subscription the server refuses is reported asynchronously.
	for _, subject := range []string{"_INBOX.>", workerInbox + ".>"} {
		select {
		case e := <-prod.denied:
			if !strings.Contains(e, "Subscription") {
				t.Errorf("unexpected violation %s", e)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the producer's subscription to %s was not refused", subject)
		}
	}
	client, _ := producer.NewClient(prod.nc)
	for i := range 20 {
		res, err := client.Submit(ctx, "inbox", wire(fmt.Sprintf("inbox-%d", i), "task", "pattern", 0.5), 10*time.Second)
		if err != nil {
			t.Fatalf("producer submit with its own inbox prefix: %v", err)
		}
		var r job.Result
		if err := json.Unmarshal(res, &r); err != nil || r.Status != job.StatusScored {
			t.Fatalf("result %s (%v)", res, err)
		}
	}
	if err := prod.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := sniffed.Load(); n != 0 {
		t.Fatalf("the producer read %d messages addressed to inboxes not its own", n)
	}
	// Forging: a publish to the worker's inbox or the default one is refused.
	for _, subject := range []string{workerInbox + ".forged", "_INBOX.forged"} {
		if err := prod.nc.Publish(subject, []byte(`{"found":true}`)); err != nil {
			t.Fatal(err)
		}
		_ = prod.nc.Flush()
		select {
		case e := <-prod.denied:
			if !strings.Contains(e, "Publish") {
				t.Errorf("unexpected violation %s", e)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the producer's publish to %s was not refused", subject)
		}
	}
	// Nor may the worker's user read the producer's replies.
	wc := connect("worker", "w-pw")
	if _, err := wc.nc.Subscribe(config.NATSAuth{NATSUser: "producer"}.InboxPrefix(url)+".>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wc.denied:
	case <-time.After(5 * time.Second):
		t.Error("the worker's subscription to the producer's inbox was not refused")
	}
}

// projectNATS starts a nats-server on the project's own
// deployments/nats/nats.conf (its three users, with these passwords) and
// returns its URL.
func projectNATS(t *testing.T) string {
	t.Helper()
	t.Setenv("HYBRIDSCORE_WORKER_PASSWORD", "w-pw")
	t.Setenv("HYBRIDSCORE_PRODUCER_PASSWORD", "p-pw")
	t.Setenv("HYBRIDSCORE_OPERATOR_PASSWORD", "o-pw")
	o, err := natsserver.ProcessConfigFile("../../deployments/nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.Port, o.HTTPPort, o.StoreDir, o.NoSigs = "127.0.0.1", -1, 0, t.TempDir(), true
	return workertest.NATSWith(t, o).ClientURL()
}

// projectWorker runs a worker as projectNATS's worker user until the test
// ends.
func projectWorker(t *testing.T, url string) {
	t.Helper()
	s, _ := workertest.Worker(t, url, func(c *config.Config) { c.NATSUser, c.NATSPassword = "worker", "w-pw" })
	eventually.True(t, 10*time.Second, s.Ready, "worker ready")
}
