package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/deadletter"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// A job whose payload cannot be read is named by its producer's
// Nats-Msg-Id; replayed from its dead letter (which gets a Nats-Msg-Id of
// its own) it keeps that name, so the operator finds the new dead letter
// under the same job id. A second replay within the duplicate window
// publishes nothing, and says so.
func TestReplayedUnreadableJobKeepsItsName(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.publishRaw("default", "orig-1", []byte(`{"job_id":`))
	dlq, err := h.client.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	letter := func(n uint64) *jetstream.RawStreamMsg {
		var m *jetstream.RawStreamMsg
		eventually.NoError(t, 10*time.Second, func() error {
			var err error
			m, err = dlq.GetMsg(ctx, n)
			return err
		}, "dead letter %d", n)
		return m
	}
	first := letter(1)
	if id := first.Header.Get(consumer.HeaderJobID); id != "orig-1" {
		t.Fatalf("first dead letter names job %q", id)
	}
	published, err := deadletter.Replay(ctx, h.client.JS, dlq, first, false)
	if err != nil || !published {
		t.Fatalf("replay: %v, published %v", err, published)
	}
	second := letter(2)
	if id, reason := second.Header.Get(consumer.HeaderJobID), second.Header.Get(consumer.HeaderReason); id != "orig-1" || reason != job.CodeInvalidJSON {
		t.Fatalf("the replayed job was dead-lettered as job %q (%s): %v", id, reason, second.Header)
	}
	if published, err := deadletter.Replay(ctx, h.client.JS, dlq, first, false); err != nil || published {
		t.Fatalf("second replay within the window: %v, published %v", err, published)
	}
	jobs, err := h.client.JS.Stream(ctx, topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if last := jobs.CachedInfo().State.LastSeq; last != 2 {
		t.Fatalf("the jobs stream's last sequence is %d: want the job and one replay", last)
	}
}

// The job id header is believed only on a copy the system made: a
// producer's unreadable job that names another job in it is answered and
// dead-lettered under its own Nats-Msg-Id, never in the other job's place.
func TestAProducersJobIDHeaderIsNotBelieved(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	m := &nats.Msg{Subject: topology.JobsPrefix + "default", Data: []byte(`{"job_id":`),
		Header: nats.Header{jetstream.MsgIDHeader: []string{"mine-1"}, consumer.HeaderJobID: []string{"victim-1"}}}
	if _, err := h.client.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	dlq, err := h.client.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	eventually.NoError(t, 10*time.Second, func() error {
		l, err := dlq.GetMsg(ctx, 1)
		if err != nil {
			return err
		}
		if id := l.Header.Get(consumer.HeaderJobID); id != "mine-1" {
			t.Fatalf("dead-lettered as job %q", id)
		}
		return nil
	}, "the dead letter")
	results, err := h.client.JS.Stream(ctx, topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := results.GetLastMsgForSubject(ctx, job.ResultSubject("default", "victim-1")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("a result stored in victim-1's place: %v", err)
	}
	if _, err := results.GetLastMsgForSubject(ctx, job.ResultSubject("default", "mine-1")); err != nil {
		t.Fatalf("mine-1's rejection: %v", err)
	}
}
