package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/backup"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// Back up the results stream, lose it, restore it.
func Example() {
	tmp, _ := os.MkdirTemp("", "backup-example-")
	defer os.RemoveAll(tmp)
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: filepath.Join(tmp, "js")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Stop()
	nc, _ := nats.Connect(ns.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	_, _ = js.CreateStream(ctx, jetstream.StreamConfig{Name: topology.ResultsStream, Subjects: []string{topology.ResultsPrefix + ">"}})
	for _, id := range []string{"job-1", "job-2", "job-3"} {
		_, _ = js.PublishMsg(ctx, &nats.Msg{Subject: topology.ResultsPrefix + "default", Data: []byte(`{"job_id":"` + id + `"}`),
			Header: nats.Header{jetstream.MsgIDHeader: []string{id}}})
	}

	dir := filepath.Join(tmp, "backup")
	res, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Streams: []string{topology.ResultsStream}})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, _ := res.Manifest.Entry(topology.ResultsStream)
	fmt.Printf("saved %d messages, sequences %d to %d\n", e.Messages, e.FirstSeq, e.LastSeq)

	_ = js.DeleteStream(ctx, topology.ResultsStream)
	rr, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range rr.Streams {
		fmt.Printf("restored %s: %d messages, original sequences: %v\n", s.Name, s.Restored, s.SequencesKept)
	}
	// Output:
	// saved 3 messages, sequences 1 to 3
	// restored SCORING_RESULTS: 3 messages, original sequences: true
}
