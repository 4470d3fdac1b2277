package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/backup"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
)

func connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns := workertest.NATS(t)
	nc := workertest.Connect(t, ns.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func publish(t *testing.T, js jetstream.JetStream, subject, data string, header ...string) *jetstream.PubAck {
	t.Helper()
	m := &nats.Msg{Subject: subject, Data: []byte(data), Header: nats.Header{}}
	for i := 0; i+1 < len(header); i += 2 {
		m.Header[header[i]] = append(m.Header[header[i]], header[i+1])
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

// stored is one message as the server holds it.
type stored struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    string
}

// contents reads a stream by sequence (the message-get API), the way a test
// can trust independently of the package under test.
func contents(t *testing.T, js jetstream.JetStream, name string) []stored {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	var out []stored
	st := s.CachedInfo().State
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		h := m.Header
		for _, k := range []string{jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader} {
			h.Del(k)
		}
		if len(h) == 0 {
			h = nil
		}
		out = append(out, stored{m.Sequence, m.Subject, h, string(m.Data)})
	}
	return out
}

func withoutExpected(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-Expected-") {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func deleteAll(t *testing.T, js jetstream.JetStream, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := js.DeleteStream(context.Background(), n); err != nil {
			t.Fatalf("delete %s: %v", n, err)
		}
	}
}

// The project's five streams, with operator-changed consumers, headers,
// gaps, a key-value history with a deletion, back up and restore to the
// same messages; the claims bucket answers the same afterwards.
func TestBackupAndRestoreTheTopology(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	topo := topology.Config{DuplicateWindow: time.Minute, AckWait: 10 * time.Second}
	if _, err := topology.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	// An operator's change to the consumer must survive.
	cc := topo.ConsumerConfig()
	cc.AckWait, cc.MaxDeliver = 7*time.Second, 9
	if _, err := js.UpdateConsumer(ctx, topology.JobsStream, cc); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		publish(t, js, "scoring.jobs.a", fmt.Sprintf(`{"job_id":"j-%d"}`, i), jetstream.MsgIDHeader, fmt.Sprintf("j-%d", i))
	}
	jobs, _ := js.Stream(ctx, topology.JobsStream)
	if err := jobs.DeleteMsg(ctx, 3); err != nil { // a gap, as an acknowledged job leaves
		t.Fatal(err)
	}
	publish(t, js, "scoring.bulk.b", `{"job_id":"b-1"}`, jetstream.MsgIDHeader, "b-1")
	for i := range 20 {
		publish(t, js, fmt.Sprintf("scoring.results.lane%d", i%3), fmt.Sprintf(`{"job_id":"r-%d","hybrid_score":0.%d}`, i, i),
			jetstream.MsgIDHeader, fmt.Sprintf("r-%d", i), "Hybridscore-Digest", fmt.Sprintf("%016x", i), "multi", "one", "multi", "two")
	}
	publish(t, js, "scoring.dlq.a", `{"job_id":`, jetstream.MsgIDHeader, "dlq-x-1", "Hybridscore-Reason", "invalid_json", "Hybridscore-Subject", "scoring.jobs.a")
	kv, err := js.CreateKeyValue(ctx, topology.Config{}.LegacyClaimsConfig()) // an earlier version's claims
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := kv.Create(ctx, fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("digest-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "k1", []byte("digest-1b")); err != nil { // history 1: the first value goes
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	names := backup.DefaultStreams()
	before := map[string][]stored{}
	for _, n := range names {
		before[n] = contents(t, js, n)
	}
	dir := filepath.Join(t.TempDir(), "b")
	var calls int
	res, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Progress: func(backup.Progress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 0 || len(res.Manifest.Streams) != 5 || calls < 5+20 {
		t.Fatalf("skipped %v, %d streams, %d progress calls", res.Skipped, len(res.Manifest.Streams), calls)
	}
	for _, n := range names {
		e, _ := res.Manifest.Entry(n)
		if want := uint64(len(before[n])); e.Messages != want || (want > 0 && (e.FirstSeq != before[n][0].Seq || e.LastSeq != before[n][want-1].Seq)) {
			t.Errorf("%s: manifest %+v, stream has %d messages", n, e, want)
		}
	}
	// Nothing the backup did is left on the server: no consumer of its own.
	for _, n := range names {
		s, _ := js.Stream(ctx, n)
		info, _ := s.Info(ctx)
		if want := map[string]int{topology.JobsStream: 1, topology.BulkStream: 1}[n]; info.State.Consumers != want {
			t.Errorf("%s has %d consumers after the backup, want %d", n, info.State.Consumers, want)
		}
	}

	deleteAll(t, js, names...)
	rr, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	order := []string{}
	for _, s := range rr.Streams {
		order = append(order, s.Name)
	}
	if want := []string{backup.ClaimsStream, topology.ResultsStream, topology.DLQStream, topology.JobsStream, topology.BulkStream}; !reflect.DeepEqual(order, want) {
		t.Fatalf("restore order %v, want %v", order, want)
	}
	for _, s := range rr.Streams {
		if s.Restored != uint64(len(before[s.Name])) || s.MovedMsgIDs != 0 || s.Expired != 0 {
			t.Errorf("%s: report %+v, want %d restored", s.Name, s, len(before[s.Name]))
		}
		// The jobs stream had a gap between its first and last message, and
		// so had the claims (a value replaced, a key deleted).
		if s.SequencesKept != (s.Name != topology.JobsStream && s.Name != backup.ClaimsStream) {
			t.Errorf("%s: sequences kept %v", s.Name, s.SequencesKept)
		}
	}
	for _, n := range names {
		after := contents(t, js, n)
		if len(after) != len(before[n]) {
			t.Fatalf("%s: %d messages after, %d before", n, len(after), len(before[n]))
		}
		for i := range after {
			b, a := before[n][i], after[i]
			if n == topology.JobsStream || n == backup.ClaimsStream {
				a.Seq = b.Seq // renumbered after the gap; all else equal
			}
			// A key-value create's condition is not restored (it referred
			// to the original stream's sequences).
			b.Header = withoutExpected(b.Header)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s message %d:\nbefore %+v\nafter  %+v", n, i, b, a)
			}
		}
	}
	cons, err := js.Consumer(ctx, topology.JobsStream, topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if c := cons.CachedInfo().Config; c.AckWait != 7*time.Second || c.MaxDeliver != 9 || cons.CachedInfo().NumPending != 4 {
		t.Fatalf("restored consumer: ack wait %s, max deliver %d, pending %d", c.AckWait, c.MaxDeliver, cons.CachedInfo().NumPending)
	}
	if _, err := js.Consumer(ctx, topology.BulkStream, topology.BulkConsumer); err != nil {
		t.Fatal(err)
	}
	kv, err = js.KeyValue(ctx, topology.LegacyClaimsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		e, err := kv.Get(ctx, fmt.Sprintf("k%d", i))
		want := fmt.Sprintf("digest-%d", i)
		switch {
		case i == 2:
			if !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Errorf("deleted key k2: %v", err)
			}
		case i == 1:
			if err != nil || string(e.Value()) != "digest-1b" {
				t.Errorf("k1: %v %v", e, err)
			}
		default:
			if err != nil || string(e.Value()) != want {
				t.Errorf("k%d: %v %v", i, e, err)
			}
		}
	}
	// A create of an existing key fails as before: the claims still claim.
	if _, err := kv.Create(ctx, "k0", []byte("other")); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("create over a restored claim: %v", err)
	}
}

// A backup refuses a directory that is not empty, and a named stream the
// server lacks; default streams the server lacks are skipped.
func TestBackupRefusals(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topology.DLQStream, Subjects: []string{"scoring.dlq.>"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if _, err := backup.Backup(ctx, js, dir, backup.BackupOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty directory: %v", err)
	}
	if _, err := backup.Backup(ctx, js, t.TempDir(), backup.BackupOptions{Streams: []string{topology.ResultsStream}}); !errors.Is(err, backup.ErrUnknownStream) {
		t.Fatalf("missing named stream: %v", err)
	}
	// One named stream the server lacks, after one it has: nothing is
	// written, not even the directory.
	partial := filepath.Join(t.TempDir(), "partial")
	_, err := backup.Backup(ctx, js, partial, backup.BackupOptions{Streams: []string{topology.DLQStream, topology.LegacyClaimsBucket}})
	if !errors.Is(err, backup.ErrUnknownStream) || !strings.Contains(err.Error(), backup.ClaimsStream) {
		t.Fatalf("missing second named stream: %v", err)
	}
	if _, serr := os.Stat(partial); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("backup directory after a refused backup: %v", serr)
	}
	res, err := backup.Backup(ctx, js, t.TempDir(), backup.BackupOptions{})
	if err != nil || len(res.Manifest.Streams) != 1 || len(res.Skipped) != 4 {
		t.Fatalf("default streams: %v %+v", err, res)
	}
}

// backupOne creates a limits stream T with the given messages and backs it
// up; it returns the backup directory.
func backupOne(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig, n int) string {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		publish(t, js, "t."+fmt.Sprint(i), fmt.Sprintf("message %d", i))
	}
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Streams: []string{cfg.Name}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A corrupted messages or config file fails its checksum and nothing is
// restored; neither is a stream in the backup touched.
func TestCorruptedFileRestoresNothing(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	for _, file := range []string{"T.messages.jsonl", "T.config.json"} {
		t.Run(file, func(t *testing.T) {
			dir := backupOne(t, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}, 3)
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "U", Subjects: []string{"u.>"}}); err != nil {
				t.Fatal(err)
			}
			publish(t, js, "u.1", "u")
			if _, err := backup.Backup(ctx, js, filepath.Join(dir, "u"), backup.BackupOptions{Streams: []string{"U"}}); err != nil {
				t.Fatal(err)
			}
			deleteAll(t, js, "T", "U")
			path := filepath.Join(dir, file)
			b, _ := os.ReadFile(path)
			b[len(b)/2] ^= 0x01 // one bit, as a disk would flip it
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := backup.Verify(dir, nil); !errors.Is(err, backup.ErrChecksum) {
				t.Fatalf("verify: %v", err)
			}
			if _, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true}); !errors.Is(err, backup.ErrChecksum) || !strings.Contains(err.Error(), file) {
				t.Fatalf("restore: %v", err)
			}
			for name := range js.StreamNames(ctx).Name() {
				t.Errorf("stream %s exists after a failed restore", name)
			}
		})
	}
}

// An existing stream with messages is refused, and no other stream is
// touched; with Replace it is replaced. An empty one is replaced anyway.
func TestRestoreOverAnExistingStream(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	cfg := jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, MaxMsgsPerSubject: 5}
	dir := backupOne(t, js, cfg, 4)
	// Same stream, other content and a different configuration.
	deleteAll(t, js, "T")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "t.x", "newer")
	if _, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{}); !errors.Is(err, backup.ErrStreamNotEmpty) {
		t.Fatalf("restore over a non-empty stream: %v", err)
	}
	if got := contents(t, js, "T"); len(got) != 1 || got[0].Data != "newer" {
		t.Fatalf("refused restore changed the stream: %+v", got)
	}
	res, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true})
	if err != nil || res.Streams[0].Replaced != 1 || res.Streams[0].Restored != 4 {
		t.Fatalf("replace: %v %+v", err, res)
	}
	s, _ := js.Stream(ctx, "T")
	if got := contents(t, js, "T"); len(got) != 4 || got[3].Data != "message 3" || s.CachedInfo().Config.MaxMsgsPerSubject != 5 {
		t.Fatalf("after replace: %+v, config %+v", got, s.CachedInfo().Config)
	}
	// Emptied (as a worker's provisioning leaves it): replaced without asking.
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{}); err != nil || !res.Streams[0].ReplacedExisting || res.Streams[0].Restored != 4 {
		t.Fatalf("over an empty stream: %v %+v", err, res)
	}
}

// Two messages of one stream with the same Nats-Msg-Id, stored more than a
// duplicate window apart: both are restored, the second with its id moved.
func TestRepeatedMsgIDIsNotDroppedOnRestore(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Duplicates: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "t.a", "first", jetstream.MsgIDHeader, "same")
	publish(t, js, "t.b", "other", jetstream.MsgIDHeader, "different")
	eventually.True(t, 10*time.Second, func() bool {
		return !publish(t, js, "t.a", "second", jetstream.MsgIDHeader, "same").Duplicate
	}, "the window to pass")
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Streams: []string{"T"}}); err != nil {
		t.Fatal(err)
	}
	// A long window now: republished at once, the copy would surely be
	// dropped if it kept its id.
	rewrite(t, dir, "T.config.json", func(b []byte) []byte {
		return []byte(strings.Replace(string(b), `"duplicate_window": 100000000,`, `"duplicate_window": 60000000000,`, 1))
	})
	deleteAll(t, js, "T")
	res, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{})
	if err != nil || res.Streams[0].Restored != 3 || res.Streams[0].MovedMsgIDs != 1 {
		t.Fatalf("restore: %v %+v", err, res)
	}
	got := contents(t, js, "T")
	if got[0].Header.Get(jetstream.MsgIDHeader) != "same" || got[1].Header.Get(jetstream.MsgIDHeader) != "different" ||
		got[2].Header.Get(jetstream.MsgIDHeader) != "" || got[2].Header.Get(backup.RestoredMsgIDHeader) != "same" || got[2].Data != "second" {
		t.Fatalf("restored %+v", got)
	}
	if s, _ := js.Stream(ctx, "T"); s.CachedInfo().Config.Duplicates != time.Minute {
		t.Fatalf("window %s", s.CachedInfo().Config.Duplicates)
	}
}

// rewrite changes a saved file and fixes the manifest's checksum, as an
// operator editing a backup on purpose would.
func rewrite(t *testing.T, dir, file string, edit func([]byte) []byte) {
	t.Helper()
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = edit(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mb, _ := os.ReadFile(filepath.Join(dir, backup.ManifestFile))
	var m backup.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	for i, e := range m.Streams {
		switch file {
		case e.MessagesFile:
			m.Streams[i].MessagesSHA256 = hex.EncodeToString(sum[:])
		case e.ConfigFile:
			m.Streams[i].ConfigSHA256 = hex.EncodeToString(sum[:])
		}
	}
	mb, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, backup.ManifestFile), mb, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Messages older than the stream's MaxAge by their original time are
// counted, and left out on request.
func TestRestoreReportsMessagesPastMaxAge(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	dir := backupOne(t, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, MaxAge: time.Hour}, 3)
	// The first message was stored two hours ago.
	rewrite(t, dir, "T.messages.jsonl", func(b []byte) []byte {
		lines := strings.SplitN(string(b), "\n", 2)
		var m backup.Message
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Fatal(err)
		}
		m.Time = time.Now().Add(-2 * time.Hour)
		first, _ := json.Marshal(m)
		return append(append(first, '\n'), lines[1]...)
	})
	deleteAll(t, js, "T")
	res, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{})
	if r := res.Streams[0]; err != nil || r.Expired != 1 || r.Restored != 3 || r.SkippedExpired != 0 {
		t.Fatalf("restore: %v %+v", err, res)
	}
	res, err = backup.Restore(ctx, js, dir, backup.RestoreOptions{Replace: true, SkipExpired: true})
	if r := res.Streams[0]; err != nil || r.Expired != 1 || r.SkippedExpired != 1 || r.Restored != 2 || r.SequencesKept {
		t.Fatalf("restore, skipping expired: %v %+v", err, res)
	}
	if got := contents(t, js, "T"); len(got) != 2 || got[0].Data != "message 1" {
		t.Fatalf("restored %+v", got)
	}
}

// A message whose subject the saved configuration no longer covers cannot
// go back into its stream: the restore says so before touching anything.
func TestRestoreRefusesASubjectTheStreamDoesNotTake(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	dir := backupOne(t, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}, 2)
	rewrite(t, dir, "T.config.json", func(b []byte) []byte {
		var cf backup.StreamConfigFile
		if err := json.Unmarshal(b, &cf); err != nil {
			t.Fatal(err)
		}
		cf.Config.Subjects = []string{"t.0"}
		b, _ = json.Marshal(cf)
		return b
	})
	deleteAll(t, js, "T")
	if _, err := backup.Restore(ctx, js, dir, backup.RestoreOptions{}); !errors.Is(err, backup.ErrChecksum) || !strings.Contains(err.Error(), `"t.1"`) {
		t.Fatalf("restore: %v", err)
	}
	if _, err := js.Stream(ctx, "T"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream after a refused restore: %v", err)
	}
}

// A work-queue stream is read by sequence while a consumer takes jobs from
// it: the backup neither waits for nor keeps what was acknowledged
// meanwhile, and acknowledges nothing itself.
func TestBackupOfAWorkQueueLeavesItsJobs(t *testing.T) {
	_, js := connect(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "W", Subjects: []string{"w.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		publish(t, js, "w.x", fmt.Sprint(i))
	}
	dir := filepath.Join(t.TempDir(), "b")
	res, err := backup.Backup(ctx, js, dir, backup.BackupOptions{Streams: []string{"W"}})
	if err != nil || res.Manifest.Streams[0].Messages != 50 {
		t.Fatalf("backup: %v %+v", err, res)
	}
	if got := contents(t, js, "W"); len(got) != 50 {
		t.Fatalf("the backup took jobs: %d left", len(got))
	}
}
