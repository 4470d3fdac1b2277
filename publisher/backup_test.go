package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/backup"
	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/eventually"
	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// streamMessages reads a stream by sequence, independently of the code
// under test.
func streamMessages(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	var out []*jetstream.RawStreamMsg
	st := s.CachedInfo().State
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func streamCount(js jetstream.JetStream, name, subject string) int {
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		return -1
	}
	var opts []jetstream.StreamInfoOpt
	if subject != "" {
		opts = append(opts, jetstream.WithSubjectFilter(subject))
	}
	info, err := s.Info(context.Background(), opts...)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// The procedure of docs/operations.md#backup-and-recovery, end to end on a
// real server with a real worker: jobs scored, dead letters of three kinds,
// jobs still waiting; backup; the streams destroyed; restore; the same
// messages, results byte for byte; a new worker scores the
// waiting jobs, and the dead letters replay as before the loss.
func TestBackupAndRestoreEndToEnd(t *testing.T) {
	ns := workertest.NATS(t)
	// MaxDeliver 1: a job whose result its stream refuses is dead-lettered
	// at its first delivery.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// A requester's stream, where a replayed job's answer is read.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TINY", Subjects: []string{"tiny.>"}}); err != nil {
		t.Fatal(err)
	}
	_, stopWorker := workertest.Worker(t, ns.URL(), func(c *config.Config) { c.MaxDeliver = 1 })
	pub := func(subject, msgID string, data []byte) {
		t.Helper()
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		if msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	jobJSON := func(id, task, reply string) []byte {
		b, _ := json.Marshal(job.Wire{JobID: id, TaskDescription: task, HistoricalPatternText: "Build OAuth2 authentication", VectorSimilarity: 0.7, ReplySubject: reply})
		return b
	}
	const scored = 40
	for i := range scored {
		pub("scoring.jobs.e2e", fmt.Sprintf("e2e-%d", i), jobJSON(fmt.Sprintf("e2e-%d", i), fmt.Sprintf("Implement OAuth2 login, variant %d", i), ""))
	}
	pub("scoring.bulk.e2e", "bulk-1", jobJSON("bulk-1", "Rescore the login flow", ""))
	eventually.True(t, 20*time.Second, func() bool { return streamCount(js, topology.ResultsStream, "scoring.results.e2e.>") == scored+1 }, "%d results", scored+1)
	// Dead letters: a job that fails validation, a reused job id with other
	// content, and a job that ran out of deliveries (as a worker letters
	// it, its cause gone since).
	pub("scoring.jobs.e2e", "bad-1", []byte(`{"job_id":"bad-1","task_description":`))
	pub("scoring.jobs.e2e", "e2e-0-again", jobJSON("e2e-0", "Something else entirely", ""))
	letter := &nats.Msg{Subject: "scoring.dlq.e2e", Data: jobJSON("big-1", "Implement OAuth2 login for the admin area", "tiny.e2e"), Header: nats.Header{}}
	letter.Header.Set(consumer.HeaderReason, consumer.ReasonMaxDeliveries)
	letter.Header.Set(consumer.HeaderError, "result not published: no stream answered")
	letter.Header.Set(consumer.HeaderJobID, "big-1")
	letter.Header.Set(consumer.HeaderSubject, "scoring.jobs.e2e")
	letter.Header.Set(consumer.HeaderDelivery, "1")
	if _, err := js.PublishMsg(ctx, letter); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, func() bool { return streamCount(js, topology.DLQStream, "") == 3 }, "3 dead letters")
	// Jobs that arrive while no worker runs wait in the work queues.
	stopWorker()
	pub("scoring.jobs.e2e", "wait-1", jobJSON("wait-1", "Add a password reset email", ""))
	pub("scoring.bulk.e2e", "wait-2", jobJSON("wait-2", "Rescore the password reset", ""))

	// The default streams but an earlier version's claims, which this
	// deployment never had.
	names := slices.DeleteFunc(backup.DefaultStreams(), func(n string) bool { return n == backup.ClaimsStream })
	before := map[string][]*jetstream.RawStreamMsg{}
	for _, n := range names {
		before[n] = streamMessages(t, js, n)
	}
	// Stored: the scored jobs, the bulk one and the rejection's answer.
	results := scored + 2
	if len(before[topology.ResultsStream]) != results || len(before[topology.JobsStream]) != 1 || len(before[topology.BulkStream]) != 1 {
		t.Fatalf("before: %d results, %d and %d waiting jobs", len(before[topology.ResultsStream]), len(before[topology.JobsStream]), len(before[topology.BulkStream]))
	}

	dir := filepath.Join(t.TempDir(), "backup-1")
	out, err := run(t, "backup", "--nats-url", ns.URL(), "--out", dir)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	for _, row := range []string{fmt.Sprintf("SCORING_RESULTS %d 1 %d", results, results), "SCORING_DLQ 3 1 3"} {
		if !hasRowPrefix(out, row) {
			t.Errorf("backup output lacks %q:\n%s", row, out)
		}
	}
	// Output to a pipe: plain progress lines, no escape codes.
	if strings.ContainsAny(out, "\r\x1b") || !strings.Contains(out, fmt.Sprintf("SCORING_RESULTS messages saved: %d of %d", results, results)) {
		t.Errorf("progress on a pipe:\n%q", out)
	}
	t.Log(out)

	// The loss.
	for _, n := range names {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	out, err = run(t, "restore", "--nats-url", ns.URL(), "--from", dir, "--progress", "never")
	if err != nil || !strings.Contains(out, "restore complete") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Log(out)
	for _, n := range names {
		after := streamMessages(t, js, n)
		if len(after) != len(before[n]) {
			t.Fatalf("%s: %d messages restored, %d backed up", n, len(after), len(before[n]))
		}
		for i, a := range after {
			b := before[n][i]
			if a.Subject != b.Subject || string(a.Data) != string(b.Data) {
				t.Fatalf("%s message %d: %s %q, was %s %q", n, i, a.Subject, a.Data, b.Subject, b.Data)
			}
			for _, h := range []string{jetstream.MsgIDHeader, "Hybridscore-Digest", consumer.HeaderReason, consumer.HeaderJobID, consumer.HeaderSubject} {
				if a.Header.Get(h) != b.Header.Get(h) {
					t.Fatalf("%s message %d: header %s %q, was %q", n, i, h, a.Header.Get(h), b.Header.Get(h))
				}
			}
		}
	}

	// A worker after the restore: the waiting jobs are scored.
	workertest.Worker(t, ns.URL(), nil)
	eventually.True(t, 20*time.Second, func() bool { return streamCount(js, topology.ResultsStream, "scoring.results.e2e.>") == results+2 }, "the waiting jobs' results")
	// The dead letters are listed and replayed with publisher dlq.
	out, err = run(t, "dlq", "list", "--nats-url", ns.URL())
	if err != nil || !hasRow(out, "invalid_json e2e 1") || !hasRow(out, "job_id_conflict e2e 1") || !hasRow(out, "max_deliveries e2e 1") {
		t.Fatalf("dlq list after restore: %v\n%s", err, out)
	}
	// The replay: scored.
	out, err = run(t, "dlq", "replay", "--nats-url", ns.URL(), "--reason", "max_deliveries", "--delete")
	if err != nil || !strings.Contains(out, "1 dead letters replayed") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	eventually.True(t, 20*time.Second, func() bool { return streamCount(js, "TINY", "") == 1 }, "the replayed job's result")
	m := streamMessages(t, js, "TINY")[0]
	var r job.Result
	if err := json.Unmarshal(m.Data, &r); err != nil || r.JobID != "big-1" || r.Status != job.StatusScored {
		t.Fatalf("replayed job's result: %v %s", err, m.Data)
	}
	// The reused job id, replayed, meets the restored result of the first
	// content: dead-lettered again, not answered.
	out, err = run(t, "dlq", "replay", "--nats-url", ns.URL(), "--reason", "job_id_conflict", "--delete")
	if err != nil || !strings.Contains(out, "1 dead letters replayed") || !strings.Contains(out, "warning: 1 of them dead-lettered as job_id_conflict: refused again") {
		t.Fatalf("replay (with its warning): %v\n%s", err, out)
	}
	eventually.True(t, 20*time.Second, func() bool {
		out, _ := run(t, "dlq", "list", "--nats-url", ns.URL())
		return hasRow(out, "job_id_conflict e2e 1")
	}, "the conflict dead-lettered again")
	// The two waiting jobs' and big-1's results; none for the conflict.
	if n := streamCount(js, topology.ResultsStream, "scoring.results.e2e.>"); n != results+3 {
		t.Fatalf("%d results after the replays, want %d", n, results+3)
	}
}

// A backup with one flipped bit restores nothing: the checksum fails before
// any stream is created or replaced.
func TestRestoreOfACorruptedBackupRestoresNothing(t *testing.T) {
	ns := workertest.NATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := topology.Provision(ctx, js, topology.Config{}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, fmt.Sprintf("scoring.results.c%d", i), []byte(fmt.Sprintf(`{"job_id":"c-%d","status":"scored"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "b")
	if out, err := run(t, "backup", "--nats-url", ns.URL(), "--out", dir, "--progress", "never"); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if out, err := run(t, "restore", "--from", dir, "--verify-only"); err != nil || !strings.Contains(out, "SCORING_RESULTS: 10 messages, checksums match") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	path := filepath.Join(dir, topology.ResultsStream+".messages.jsonl")
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0x04
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range backup.DefaultStreams() {
		if err := js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
	}
	out, err := run(t, "restore", "--nats-url", ns.URL(), "--from", dir, "--replace")
	if err == nil || !strings.Contains(out, "SCORING_RESULTS.messages.jsonl: SHA-256") || !strings.Contains(out, "nothing was restored") {
		t.Fatalf("restore of a corrupted backup: %v\n%s", err, out)
	}
	var left []string
	for n := range js.StreamNames(ctx).Name() {
		left = append(left, n)
	}
	if len(left) != 0 {
		t.Fatalf("streams after the refused restore: %v", left)
	}
	// A stream named for a backup must exist.
	out, err = run(t, "backup", "--nats-url", ns.URL(), "--out", t.TempDir()+"/empty", "--streams", "SCORING_RESULTS")
	if err == nil || !strings.Contains(out, "no such stream") {
		t.Fatalf("backup of a missing stream: %v\n%s", err, out)
	}
}

// hasRowPrefix reports whether a line of a table starts with these fields.
func hasRowPrefix(out, fields string) bool {
	want := strings.Fields(fields)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(want) && slices.Equal(f[:len(want)], want) {
			return true
		}
	}
	return false
}
