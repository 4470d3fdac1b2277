package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	srv "github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// The worker and a producer work under deployments/nats/nats.conf's
// least-privilege users; the worker may not touch streams beyond its own
// needs, and a job whose reply subject it may not publish to gets a clear
// outcome: dead-lettered as invalid_field, not retried and not lost.
func TestLeastPrivilegeUsers(t *testing.T) {
	t.Setenv("HYBRIDSCORE_WORKER_PASSWORD", "w-pw")
	t.Setenv("HYBRIDSCORE_PRODUCER_PASSWORD", "p-pw")
	t.Setenv("HYBRIDSCORE_OPERATOR_PASSWORD", "o-pw")
	o, err := natsserver.ProcessConfigFile("../../deployments/nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.Port, o.HTTPPort, o.StoreDir, o.NoSigs = "127.0.0.1", -1, 0, t.TempDir(), true
	ns := startNATS(t, o)
	url := ns.ClientURL()

	cfg := config.Defaults()
	cfg.NATSURL, cfg.HTTPAddr, cfg.NATSUser, cfg.NATSPassword = url, "127.0.0.1:0", "worker", "w-pw"
	ctx, cancel := context.WithCancel(context.Background())
	s, err := srv.New(ctx, cfg, zap.NewNop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	connect := func(user, pass string) *nats.Conn {
		nc, err := nats.Connect(url, nats.UserInfo(user, pass))
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
