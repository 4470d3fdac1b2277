package backup_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/backup"
)

// BenchmarkBackupRestore backs up and restores a stream of 50,000 messages
// of a result's size (about 620 bytes) with a Nats-Msg-Id each, for a limits
// stream (read by an ordered consumer) and a work queue (read by sequence).
// It reports messages per second for each half.
func BenchmarkBackupRestore(b *testing.B) {
	const n = 50000
	for _, retention := range []jetstream.RetentionPolicy{jetstream.LimitsPolicy, jetstream.WorkQueuePolicy} {
		b.Run(retention.String(), func(b *testing.B) {
			_, js := connect(b)
			ctx := context.Background()
			cfg := jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, Retention: retention}
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"job_id":"x","status":"scored",` + strings.Repeat(`"pad":"0123456789",`, 30) + `"hybrid_score":0.5}`)
			for i := range n {
				if _, err := js.PublishMsgAsync(&nats.Msg{Subject: fmt.Sprintf("b.lane%d", i%8), Data: body,
					Header: nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprintf("id-%d", i)}}}); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
			var backupSec, restoreSec float64
			for i := range b.N {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				start := time.Now()
				res, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Streams: []string{"B"}})
				backupSec += time.Since(start).Seconds()
				if err != nil || res.Manifest.Streams[0].Messages != n {
					b.Fatalf("backup: %v %+v", err, res)
				}
				start = time.Now()
				rr, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true})
				restoreSec += time.Since(start).Seconds()
				if err != nil || rr.Streams[0].Restored != n {
					b.Fatalf("restore: %v %+v", err, rr)
				}
			}
			b.ReportMetric(float64(n*b.N)/backupSec, "backup_msgs/s")
			b.ReportMetric(float64(n*b.N)/restoreSec, "restore_msgs/s")
		})
	}
}
