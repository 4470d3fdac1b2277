package deadletter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

// A user NATS does not let read the dead letters is told so after
// RequestTimeout, not after the caller's whole deadline: the server refuses
// such a request without answering it.
func TestEachRefusedReadSaysWhy(t *testing.T) {
	defer func(d time.Duration) { RequestTimeout = d }(RequestTimeout)
	RequestTimeout = 300 * time.Millisecond

	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "blind", Password: "b", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"$JS.API.STREAM.INFO.>"}}}},
		}}
	ns := workertest.NATSWith(t, o)
	ctx := context.Background()

	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	if _, err := ajs.CreateStream(ctx, jetstream.StreamConfig{Name: topology.DLQStream, Subjects: []string{topology.DLQPrefix + ">"}}); err != nil {
		t.Fatal(err)
	}
	letter := &nats.Msg{Subject: topology.DLQPrefix + "default", Data: []byte("not json"),
		Header: nats.Header{consumer.HeaderReason: []string{"invalid_json"}, consumer.HeaderSubject: []string{topology.JobsPrefix + "default"}}}
	if _, err := ajs.PublishMsg(ctx, letter); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := Each(ctx, ajs, Filter{}, func(*jetstream.RawStreamMsg) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("admin: %d letters, %v", n, err)
	}

	blind, err := nats.Connect(ns.ClientURL(), nats.UserInfo("blind", "b"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer blind.Close()
	bjs, _ := jetstream.New(blind)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	err = Each(cctx, bjs, Filter{}, func(*jetstream.RawStreamMsg) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "may this NATS user read it?") || time.Since(start) > 5*time.Second {
		t.Fatalf("refused read after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("refused read after %s: %v", time.Since(start).Round(time.Millisecond), err)
}
