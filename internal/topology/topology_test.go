package topology_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

// setup runs an embedded NATS server and returns its JetStream and a
// context bounded for the test.
func setup(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	ns := workertest.NATS(t)
	js, err := jetstream.New(workertest.Connect(t, ns.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return js, ctx
}

// The provisioned consumers take their whole stream without a filter (the
// server's cheaper path) and still hand out every lane's jobs; a consumer
// an earlier version made with a filter is left as it is.
func TestProvisionedConsumersTakeTheWholeStream(t *testing.T) {
	js, ctx := setup(t)
	// An earlier version's bulk consumer, filtered on the stream's subject.
	var topo topology.Config
	old := topo.BulkConsumerConfig()
	old.FilterSubject = topology.BulkPrefix + ">"
	if _, err := js.CreateStream(ctx, topo.Streams()[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, topology.BulkStream, old); err != nil {
		t.Fatal(err)
	}
	cfg, err := topology.Provision(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FilterSubject != "" || len(cfg.FilterSubjects) != 0 {
		t.Fatalf("provisioned consumer filters on %q %q, want no filter", cfg.FilterSubject, cfg.FilterSubjects)
	}
	bulk, err := js.Consumer(ctx, topology.BulkStream, topology.BulkConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if got := bulk.CachedInfo().Config.FilterSubject; got != old.FilterSubject {
		t.Fatalf("existing consumer's filter became %q, want it left as %q", got, old.FilterSubject)
	}

	lanes := []string{"default", "rescore", "a-b_c"}
	for _, lane := range lanes {
		if _, err := js.Publish(ctx, topology.JobsPrefix+lane, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(lanes), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, topology.Lane(m.Subject()))
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(lanes) {
		t.Fatalf("fetched lanes %v, want %v", got, lanes)
	}
	for i := range lanes {
		if got[i] != lanes[i] {
			t.Fatalf("fetched lanes %v, want %v", got, lanes)
		}
	}
}

// Streams made with other settings are not changed by Provision, and Drift
// names each difference; streams as configured have none.
func TestDriftNamesSettingsStreamsKeep(t *testing.T) {
	js, ctx := setup(t)
	earlier := topology.Config{DuplicateWindow: 48 * time.Hour, ResultsMaxAge: 72 * time.Hour}
	if _, err := topology.Provision(ctx, js, earlier); err != nil {
		t.Fatal(err)
	}
	if d, err := topology.Drift(ctx, js, earlier); err != nil || len(d) != 0 {
		t.Fatalf("as configured: %v %v", d, err)
	}
	now := topology.Config{DuplicateWindow: 5 * time.Second, ResultsMaxAge: 72 * time.Hour}
	if _, err := topology.Provision(ctx, js, now); err != nil {
		t.Fatal(err)
	}
	d, err := topology.Drift(ctx, js, now)
	if err != nil || len(d) != 4 || !strings.Contains(d[0], "SCORING_JOBS keeps its duplicate window of 48h0m0s, not DUPLICATE_WINDOW's 5s") {
		t.Fatalf("drift %q %v", d, err)
	}
}
