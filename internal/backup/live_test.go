package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/backup"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// state is what a refused restore must leave exactly as it was: each
// stream's creation time (a stream deleted and created again has another),
// counts and last sequence.
type state struct {
	Created       time.Time
	Msgs, LastSeq uint64
	Consumers     int
}

func states(t *testing.T, js jetstream.JetStream) map[string]state {
	t.Helper()
	ctx := context.Background()
	out := map[string]state{}
	for name := range js.StreamNames(ctx).Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		i := s.CachedInfo()
		out[name] = state{i.Created, i.State.Msgs, i.State.LastSeq, i.State.Consumers}
	}
	return out
}

func resultsStored(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

func publishJobs(t *testing.T, js jetstream.JetStream, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		data, _ := json.Marshal(job.Wire{JobID: fmt.Sprintf("live-%04d", i), TaskDescription: "task", HistoricalPatternText: "pattern", VectorSimilarity: 0.5})
		publish(t, js, topology.JobsPrefix+"live", string(data))
	}
}

// restore --replace while a worker runs changes nothing and says so; once
// the worker has stopped it replaces the streams.
func TestRestoreRefusesStreamsALiveWorkerUses(t *testing.T) {
	ns := workertest.NATS(t)
	js, err := jetstream.New(workertest.Connect(t, ns.URL()))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := workertest.Worker(t, ns.URL(), nil)
	publishJobs(t, js, 0, 50)
	eventually.True(t, 30*time.Second, func() bool { return resultsStored(t, js) >= 50 }, "50 results")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(ctx, js, dir, backup.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	publishJobs(t, js, 50, 50)
	eventually.True(t, 30*time.Second, func() bool { return resultsStored(t, js) >= 100 }, "100 results")
	before := states(t, js)
	_, err = backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true})
	if !errors.Is(err, backup.ErrLive) {
		t.Fatalf("restore --replace beside a live worker: %v", err)
	}
	if after := states(t, js); !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused restore changed the server:\nbefore %+v\nafter  %+v", before, after)
	}
	t.Logf("refused: %v", err)
	stop()
	res, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true})
	if err != nil {
		t.Fatalf("restore --replace with the worker stopped: %v", err)
	}
	if n := resultsStored(t, js); n != 50 {
		t.Fatalf("%d results after restoring a backup of 50 (%+v)", n, res)
	}
}

// A producer publishing into a stream to be replaced stops the restore
// before it changes anything.
func TestRestoreRefusesAStreamBeingPublishedTo(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	cfg := jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}
	dir := backupOne(t, js, cfg, 4)
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			_, _ = js.Publish(pctx, "t.live", []byte("x"))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	eventually.True(t, 10*time.Second, func() bool { return len(contents(t, js, "T")) > 4 }, "the producer publishing")
	s, _ := js.Stream(ctx, "T")
	created := s.CachedInfo().Created
	_, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true})
	if !errors.Is(err, backup.ErrLive) {
		t.Fatalf("restore --replace beside a producer: %v", err)
	}
	s, _ = js.Stream(ctx, "T")
	if !s.CachedInfo().Created.Equal(created) {
		t.Fatal("the stream was replaced")
	}
}

// A restore that fails part way (here the second stream cannot be created:
// another stream took its subjects) puts back the stream it had already
// replaced, content and configuration, and leaves no partial one.
func TestFailedRestoreLeavesTheServerAsItWas(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	a := jetstream.StreamConfig{Name: "A", Subjects: []string{"a.>"}, MaxMsgsPerSubject: 7}
	b := jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}}
	for _, c := range []jetstream.StreamConfig{a, b} {
		if _, err := js.CreateStream(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		publish(t, js, "a.x", fmt.Sprintf("saved %d", i))
		publish(t, js, "b.x", fmt.Sprintf("saved %d", i))
	}
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Streams: []string{"A", "B"}}); err != nil {
		t.Fatal(err)
	}
	// Now: A holds other messages under another configuration, B is gone
	// and X holds its subjects.
	deleteAll(t, js, "A", "B")
	// The server may still be removing A's store ("error creating store",
	// 10049): try again for a moment, as a restore does.
	var err error
	eventually.True(t, 5*time.Second, func() bool {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "A", Subjects: []string{"a.>"}})
		return err == nil
	}, "stream A created again")
	if _, err := js.CreateConsumer(ctx, "A", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "a.y", "current 0")
	publish(t, js, "a.y", "current 1")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "X", Subjects: []string{"b.>"}}); err != nil {
		t.Fatal(err)
	}
	want := contents(t, js, "A")
	_, err = backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true})
	if err == nil {
		t.Fatal("restored B over X's subjects")
	}
	if !errors.Is(err, backup.ErrRolledBack) {
		t.Fatalf("not rolled back: %v", err)
	}
	t.Logf("failed restore: %v", err)
	got := contents(t, js, "A")
	if len(got) != len(want) {
		t.Fatalf("A after the failed restore: %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i].Subject != want[i].Subject || got[i].Data != want[i].Data {
			t.Fatalf("A after the failed restore: %+v, want %+v", got, want)
		}
	}
	s, err := js.Stream(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().Config.MaxMsgsPerSubject == 7 {
		t.Fatal("A kept the backup's configuration")
	}
	if _, err := s.Consumer(ctx, "reader"); err != nil {
		t.Fatalf("A's consumer: %v", err)
	}
	if _, err := js.Stream(ctx, "B"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("B after the failed restore: %v", err)
	}
}
