// Package backup saves hybridscore's JetStream streams to a directory and
// restores them from it: each stream's configuration, its durable consumers'
// configurations and every message (subject, headers, data, original
// sequence and time), with a manifest of counts, sequences and SHA-256
// checksums.
//
// A backup reads each stream without changing it: a limits stream through
// an ordered consumer (an ephemeral consumer that acknowledges nothing), a
// work-queue or interest stream by sequence through the stream's message-get
// API (an ordered consumer cannot read a work queue, and no consumer may
// acknowledge there). Messages go to disk as they arrive; no stream is held
// in memory. Each stream's point in time is its last sequence when its
// backup starts; DefaultStreams orders the streams so that a backup taken
// while workers run loses no job (see DefaultStreams).
//
// A restore checks every checksum and every message before it touches the
// server, refuses to replace a stream that holds messages unless told to,
// recreates each stream from its saved configuration (starting at the saved
// first sequence, so a stream without gaps gets its original sequences
// back), republishes the messages in order with their subjects and headers,
// compares the counts with the manifest, and recreates the durable
// consumers. See Restore for what it does with Nats-Msg-Id, the stream's
// limits and message times.
package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/topology"
)

// Format is the version of the directory layout this package writes and
// reads.
const Format = 1

// ManifestFile is the manifest's name inside a backup directory. It is
// written last: a directory without it holds no complete backup.
const ManifestFile = "manifest.json"

// ClaimsStream is the stream behind the claims bucket topology.LegacyClaimsBucket.
const ClaimsStream = "KV_" + topology.LegacyClaimsBucket

// Errors returned by Backup, Verify and Restore, wrapped with details.
var (
	// ErrChecksum: a file's SHA-256 differs from the manifest's, or its
	// content disagrees with the manifest (count, sequences).
	ErrChecksum = errors.New("backup: file does not match the manifest")
	// ErrStreamNotEmpty: restore would replace a stream that holds messages
	// and RestoreOptions.Replace is not set.
	ErrStreamNotEmpty = errors.New("backup: stream exists and holds messages")
	// ErrUnknownStream: a stream was asked for that the server or the backup
	// does not have.
	ErrUnknownStream = errors.New("backup: unknown stream")
	// ErrCountMismatch: after a restore the stream holds another number of
	// messages than were published (a limit of its configuration dropped
	// some, or something else published to it meanwhile).
	ErrCountMismatch = errors.New("backup: restored stream's count differs")
)

// DefaultStreams returns the project's streams in the order a backup takes
// them: the job streams first, then an earlier version's claims (skipped
// where there are none), the results, then the dead letters. A job answered
// while the backup runs is then either still in the saved jobs (and its
// result, if saved, makes a restored worker repeat it instead of storing a
// second one) or its result is saved; a job is never in neither.
func DefaultStreams() []string {
	return []string{topology.JobsStream, topology.BulkStream, ClaimsStream, topology.ResultsStream, topology.DLQStream}
}

// restoreRank orders a restore: (an earlier version's claims,) results,
// dead letters, and the job streams last, so that a worker started at any
// point finds the results of the jobs it is given.
func restoreRank(name string) int {
	switch name {
	case ClaimsStream:
		return 0
	case topology.ResultsStream:
		return 1
	case topology.DLQStream:
		return 2
	case topology.JobsStream:
		return 3
	case topology.BulkStream:
		return 4
	}
	return 5
}

// StreamName returns the stream name for name, which may also be the claims
// bucket's name (topology.LegacyClaimsBucket).
func StreamName(name string) string {
	if name == topology.LegacyClaimsBucket {
		return ClaimsStream
	}
	return name
}

// Manifest describes a backup directory.
type Manifest struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	// Server is the NATS server's name and version at backup time.
	Server  string        `json:"server,omitempty"`
	Streams []StreamEntry `json:"streams"`
}

// StreamEntry is one stream of a Manifest.
type StreamEntry struct {
	Name           string `json:"name"`
	ConfigFile     string `json:"config_file"`
	ConfigSHA256   string `json:"config_sha256"`
	MessagesFile   string `json:"messages_file"`
	MessagesSHA256 string `json:"messages_sha256"`
	// Messages is the number of messages saved; Bytes their subjects',
	// headers' and data's size as stored.
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// FirstSeq and LastSeq are the first and last saved messages' original
	// sequences (0 without messages); FirstTime and LastTime their times.
	FirstSeq  uint64     `json:"first_seq"`
	LastSeq   uint64     `json:"last_seq"`
	FirstTime *time.Time `json:"first_time,omitempty"`
	LastTime  *time.Time `json:"last_time,omitempty"`
}

// Entry returns the manifest's entry for a stream (or bucket) name.
func (m *Manifest) Entry(name string) (StreamEntry, bool) {
	name = StreamName(name)
	for _, e := range m.Streams {
		if e.Name == name {
			return e, true
		}
	}
	return StreamEntry{}, false
}

// StreamConfigFile is the content of a stream's config file.
type StreamConfigFile struct {
	Config jetstream.StreamConfig `json:"config"`
	// Consumers are the stream's durable consumers' configurations
	// (ephemeral ones are not saved). Their state (delivered and acked
	// sequences) is not saved: a recreated consumer starts by its
	// DeliverPolicy.
	Consumers []jetstream.ConsumerConfig `json:"consumers,omitempty"`
	// State is the stream's state when its backup started.
	State jetstream.StreamState `json:"state"`
}

// Message is one line of a messages file (JSON Lines).
type Message struct {
	Seq     uint64      `json:"seq"`
	Time    time.Time   `json:"time"`
	Subject string      `json:"subject"`
	Header  nats.Header `json:"header,omitempty"`
	Data    []byte      `json:"data"`
}

// Progress reports one stream's progress: Done messages of about Total (the
// stream's count when its backup or restore started).
type Progress struct {
	Stream      string
	Done, Total uint64
}

// BackupOptions choose what Backup saves. The zero value saves
// DefaultStreams, skipping those the server does not have.
type BackupOptions struct {
	// Streams names the streams to save (stream names, or the claims
	// bucket's name); a missing one is an error (ErrUnknownStream). Empty:
	// DefaultStreams, a missing one skipped and reported in Skipped.
	Streams []string
	// Progress, when set, is called after every message and when a stream
	// starts and ends. It runs on the calling goroutine.
	Progress func(Progress)
}

// BackupResult is what Backup did.
type BackupResult struct {
	Manifest *Manifest
	// Skipped lists the default streams the server does not have.
	Skipped []string
}

// Backup saves streams into dir, which must not exist or be empty. The
// manifest is written last, once every file is complete. js must reach
// JetStream's API; Backup changes no stream or consumer.
func Backup(ctx context.Context, js jetstream.JetStream, dir string, o BackupOptions) (*BackupResult, error) {
	names, explicit := o.Streams, len(o.Streams) > 0
	if !explicit {
		names = DefaultStreams()
	} else {
		// Every stream asked for must exist before anything is written: a
		// typo found halfway would leave a directory of files and no
		// manifest. Each is looked up again when its turn comes, so that
		// its state is read then, not now.
		for _, name := range names {
			if _, err := js.Stream(ctx, StreamName(name)); errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, fmt.Errorf("%w: %s: no such stream on the server; nothing was written", ErrUnknownStream, StreamName(name))
			} else if err != nil {
				return nil, fmt.Errorf("backup: stream %s: %w", StreamName(name), err)
			}
		}
	}
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	res := &BackupResult{Manifest: &Manifest{Format: Format, Created: time.Now().UTC()}}
	if nc := js.Conn(); nc != nil {
		res.Manifest.Server = nc.ConnectedServerName() + " " + nc.ConnectedServerVersion()
	}
	seen := map[string]bool{}
	for _, name := range names {
		name = StreamName(name)
		if seen[name] {
			continue
		}
		seen[name] = true
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if explicit {
				return nil, fmt.Errorf("%w: %s: no such stream on the server", ErrUnknownStream, name)
			}
			res.Skipped = append(res.Skipped, name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("backup: stream %s: %w", name, err)
		}
		e, err := backupStream(ctx, s, dir, o.Progress)
		if err != nil {
			return nil, err
		}
		res.Manifest.Streams = append(res.Manifest.Streams, e)
	}
	if err := writeJSON(filepath.Join(dir, ManifestFile), res.Manifest, nil); err != nil {
		return nil, err
	}
	return res, nil
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o750)
	case err != nil:
		return fmt.Errorf("backup: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("backup: %s is not empty: choose a new directory for each backup", dir)
	}
	return nil
}

func backupStream(ctx context.Context, s jetstream.Stream, dir string, progress func(Progress)) (StreamEntry, error) {
	info := s.CachedInfo()
	name := info.Config.Name
	e := StreamEntry{Name: name, ConfigFile: name + ".config.json", MessagesFile: name + ".messages.jsonl"}
	cf := StreamConfigFile{Config: info.Config, State: info.State}
	cf.State.Subjects, cf.State.Deleted = nil, nil
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		if ci.Config.Durable != "" {
			cf.Consumers = append(cf.Consumers, ci.Config)
		}
	}
	if err := consumers.Err(); err != nil {
		return e, fmt.Errorf("backup: consumers of %s: %w", name, err)
	}
	h := sha256.New()
	if err := writeJSON(filepath.Join(dir, e.ConfigFile), cf, h); err != nil {
		return e, err
	}
	e.ConfigSHA256 = hex.EncodeToString(h.Sum(nil))

	f, err := os.OpenFile(filepath.Join(dir, e.MessagesFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return e, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	h = sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	total := info.State.Msgs
	report := func() {
		if progress != nil {
			progress(Progress{Stream: name, Done: e.Messages, Total: total})
		}
	}
	report()
	emit := func(m Message) error {
		if err := enc.Encode(&m); err != nil {
			return fmt.Errorf("backup: %s message %d: %w", name, m.Seq, err)
		}
		if e.Messages == 0 {
			e.FirstSeq, e.FirstTime = m.Seq, timePtr(m.Time)
		}
		e.Messages++
		e.Bytes += uint64(len(m.Subject) + len(m.Data) + headerSize(m.Header))
		e.LastSeq, e.LastTime = m.Seq, timePtr(m.Time)
		report()
		return nil
	}
	last := info.State.LastSeq
	if info.State.Msgs > 0 {
		if info.Config.Retention == jetstream.LimitsPolicy {
			err = readOrdered(ctx, s, last, emit)
		} else {
			err = readBySequence(ctx, s, info.State.FirstSeq, last, info.Config.AllowDirect, emit)
		}
		if err != nil {
			return e, err
		}
	}
	if err := w.Flush(); err != nil {
		return e, fmt.Errorf("backup: %s: %w", e.MessagesFile, err)
	}
	if err := f.Sync(); err != nil {
		return e, fmt.Errorf("backup: %s: %w", e.MessagesFile, err)
	}
	if err := f.Close(); err != nil {
		return e, fmt.Errorf("backup: %s: %w", e.MessagesFile, err)
	}
	e.MessagesSHA256 = hex.EncodeToString(h.Sum(nil))
	return e, nil
}

func timePtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

func headerSize(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// readOrdered reads a limits stream through an ordered consumer up to last,
// its last sequence when the backup started. It ends at last, or at a
// message with nothing pending after it, or when a fetch brings nothing
// (the rest was removed meanwhile, by age or limits).
func readOrdered(ctx context.Context, s jetstream.Stream, last uint64, emit func(Message) error) error {
	name := s.CachedInfo().Config.Name
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("backup: read %s: %w", name, err)
	}
	// The ordered consumer is ephemeral: the server would remove it after
	// its inactivity threshold; deleting it at once leaves nothing behind.
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			_ = s.DeleteConsumer(context.WithoutCancel(ctx), ci.Name)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Bounded by count and bytes: a batch of large messages is not
		// buffered whole (64 MiB is above any server's maximum payload).
		batch, err := cons.Fetch(1000, jetstream.FetchMaxBytes(64<<20), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("backup: read %s: %w", name, err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("backup: read %s: %w", name, err)
			}
			if md.Sequence.Stream > last {
				done = true
				break
			}
			if err := emit(Message{Seq: md.Sequence.Stream, Time: md.Timestamp.UTC(), Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}); err != nil {
				return err
			}
			if md.Sequence.Stream == last || md.NumPending == 0 {
				done = true
				break
			}
		}
		if done {
			return nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("backup: read %s: %w", name, err)
		}
		if n == 0 {
			return nil
		}
	}
}

// directHeaders are the headers a direct get adds to a message; they are not
// the message's own.
var directHeaders = []string{jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader,
	"Nats-Last-Sequence", "Nats-Num-Pending"}

// readBySequence reads a stream one message at a time, each the next at or
// after a sequence (the message-get API's next_by_subj), from first to last.
// It suits work queues, which no ordered consumer may read; messages
// acknowledged meanwhile are simply not found.
func readBySequence(ctx context.Context, s jetstream.Stream, first, last uint64, direct bool, emit func(Message) error) error {
	name := s.CachedInfo().Config.Name
	for seq := first; seq <= last; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("backup: read %s at %d: %w", name, seq, err)
		}
		if m.Sequence > last {
			return nil
		}
		h := m.Header
		if direct {
			for _, k := range directHeaders {
				h.Del(k)
			}
		}
		if len(h) == 0 {
			h = nil
		}
		if err := emit(Message{Seq: m.Sequence, Time: m.Time.UTC(), Subject: m.Subject, Header: h, Data: m.Data}); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}

// writeJSON writes v, indented, to a new file, also into h when set.
func writeJSON(path string, v any, h hash.Hash) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // subjects keep their ">" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("backup: %s: %w", filepath.Base(path), err)
	}
	b := buf.Bytes()
	if h != nil {
		h.Write(b)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup: %w", err)
	}
	return f.Close()
}
