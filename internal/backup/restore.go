package backup

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RestoredMsgIDHeader carries a message's original Nats-Msg-Id when Restore
// had to move it (see Restore).
const RestoredMsgIDHeader = "Hybridscore-Restored-Msg-Id"

// RestoreOptions choose what Restore does. The zero value restores every
// stream of the backup, refusing to replace one that holds messages.
type RestoreOptions struct {
	// Streams names the streams to restore (stream names, or the claims
	// bucket's name); each must be in the backup (ErrUnknownStream). Empty:
	// every stream of the backup.
	Streams []string
	// Replace deletes an existing stream that holds messages (and its
	// consumers) before restoring it. Without it such a stream is an error
	// (ErrStreamNotEmpty) and nothing is restored. An existing empty stream,
	// such as one a worker provisioned, is always replaced.
	Replace bool
	// SkipExpired leaves out the messages whose original time is older than
	// their stream's MaxAge: the original stream has dropped them by now,
	// and republished they would be kept another MaxAge. Without it they are
	// restored and counted in StreamReport.Expired.
	SkipExpired bool
	// LiveWindow is how long the streams to be replaced are watched for
	// clients still using them (ErrLive) before anything is changed; 0
	// means DefaultLiveWindow.
	LiveWindow time.Duration
	// MaxPending bounds the publishes awaiting their PubAck; 0 means 512.
	MaxPending int
	// Progress, when set, is called after every stored message and when a
	// stream starts. It runs on the calling goroutine.
	Progress func(Progress)
}

// RestoreResult is what Restore did, stream by stream in restore order.
type RestoreResult struct {
	Streams []StreamReport
}

// StreamReport is one restored stream.
type StreamReport struct {
	Name string
	// Restored messages are stored in the stream; it held as many when its
	// restore ended (the check against the manifest).
	Restored uint64
	// Expired counts messages older than the stream's MaxAge by their
	// original time; SkippedExpired those of them left out (SkipExpired).
	Expired, SkippedExpired uint64
	// MovedMsgIDs counts messages whose Nats-Msg-Id repeats an earlier
	// message's of the backup: republished under RestoredMsgIDHeader
	// instead, or the duplicate window would have dropped them.
	MovedMsgIDs uint64
	// SequencesKept: every message got its original sequence back (true
	// when the original stream had no gap between its first and last
	// messages and nothing was skipped).
	SequencesKept bool
	// Replaced is the number of messages of the existing stream that was
	// deleted first (0 when it was empty or absent); ReplacedExisting says
	// whether there was one.
	ReplacedExisting bool
	Replaced         uint64
	// Consumers are the durable consumers recreated.
	Consumers []string
	// MaxAge is the stream's MaxAge (0: none).
	MaxAge time.Duration
}

// verified is a stream whose files passed Verify.
type verified struct {
	entry StreamEntry
	cf    StreamConfigFile
	// repeats holds the hashes of the Nats-Msg-Id values that occur more
	// than once in the messages file (8 bytes a message were kept while
	// reading, none afterwards).
	repeats map[uint64]bool
}

// Verify checks a backup directory without a server: the manifest, each
// selected stream's files against their SHA-256, every message line
// (decodable, sequences rising between the manifest's first and last, the
// count, each subject one of the stream's). streams selects as
// RestoreOptions.Streams does. Errors wrap ErrChecksum or ErrUnknownStream.
func Verify(dir string, streams []string) (*Manifest, error) {
	m, _, err := verify(dir, streams, maphash.MakeSeed())
	return m, err
}

func verify(dir string, streams []string, seed maphash.Seed) (*Manifest, []verified, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, nil, fmt.Errorf("backup: %w (is %s a complete backup?)", err, dir)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrChecksum, ManifestFile, err)
	}
	if m.Format != Format {
		return nil, nil, fmt.Errorf("backup: %s: format %d, this program reads %d", ManifestFile, m.Format, Format)
	}
	entries := m.Streams
	if len(streams) > 0 {
		entries = nil
		for _, name := range streams {
			e, ok := m.Entry(name)
			if !ok {
				return nil, nil, fmt.Errorf("%w: %s is not in the backup", ErrUnknownStream, name)
			}
			if !slices.ContainsFunc(entries, func(x StreamEntry) bool { return x.Name == e.Name }) {
				entries = append(entries, e)
			}
		}
	}
	var out []verified
	for _, e := range entries {
		v, err := verifyStream(dir, e, seed)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, v)
	}
	return &m, out, nil
}

func verifyStream(dir string, e StreamEntry, seed maphash.Seed) (verified, error) {
	v := verified{entry: e}
	if filepath.Base(e.ConfigFile) != e.ConfigFile || filepath.Base(e.MessagesFile) != e.MessagesFile {
		return v, fmt.Errorf("%w: %s: file names must not contain a directory", ErrChecksum, e.Name)
	}
	b, err := os.ReadFile(filepath.Join(dir, e.ConfigFile))
	if err != nil {
		return v, fmt.Errorf("backup: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.ConfigSHA256 {
		return v, fmt.Errorf("%w: %s: SHA-256 %x, manifest says %s", ErrChecksum, e.ConfigFile, sum, e.ConfigSHA256)
	}
	if err := json.Unmarshal(b, &v.cf); err != nil {
		return v, fmt.Errorf("%w: %s: %v", ErrChecksum, e.ConfigFile, err)
	}
	if v.cf.Config.Name != e.Name {
		return v, fmt.Errorf("%w: %s names stream %q", ErrChecksum, e.ConfigFile, v.cf.Config.Name)
	}
	f, err := os.Open(filepath.Join(dir, e.MessagesFile))
	if err != nil {
		return v, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	var (
		n, prev uint64
		ids     []uint64
		bad     error
	)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && bad == nil {
			var msg Message
			switch uerr := json.Unmarshal(line, &msg); {
			case uerr != nil:
				bad = fmt.Errorf("line %d: %v", n+1, uerr)
			case msg.Seq <= prev || msg.Seq < e.FirstSeq || msg.Seq > e.LastSeq:
				bad = fmt.Errorf("line %d: sequence %d out of order or outside %d…%d", n+1, msg.Seq, e.FirstSeq, e.LastSeq)
			case !covered(v.cf.Config.Subjects, msg.Subject):
				bad = fmt.Errorf("message %d: subject %q is none of the stream's subjects %v; it cannot be republished to it", msg.Seq, msg.Subject, v.cf.Config.Subjects)
			default:
				prev = msg.Seq
				n++
				if id := msg.Header.Get(jetstream.MsgIDHeader); id != "" {
					ids = append(ids, maphash.String(seed, id))
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v, fmt.Errorf("backup: %s: %w", e.MessagesFile, err)
		}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != e.MessagesSHA256 {
		return v, fmt.Errorf("%w: %s: SHA-256 %s, manifest says %s", ErrChecksum, e.MessagesFile, sum, e.MessagesSHA256)
	}
	if bad != nil {
		return v, fmt.Errorf("%w: %s: %v", ErrChecksum, e.MessagesFile, bad)
	}
	if n != e.Messages || (n > 0 && prev != e.LastSeq) {
		return v, fmt.Errorf("%w: %s: %d messages ending at %d, manifest says %d ending at %d", ErrChecksum, e.MessagesFile, n, prev, e.Messages, e.LastSeq)
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			if v.repeats == nil {
				v.repeats = map[uint64]bool{}
			}
			v.repeats[ids[i]] = true
		}
	}
	return v, nil
}

// covered reports whether subject is matched by one of the filters.
func covered(filters []string, subject string) bool {
	for _, f := range filters {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether a NATS subject matches a filter with the
// wildcards * (one token) and > (one or more tokens, last).
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// Restore recreates the selected streams of the backup in dir (see
// RestoreOptions). Before it touches the server it verifies every selected
// stream's files (Verify) and looks at the existing streams; a failure there
// restores nothing. Streams are restored claims first, then results, dead
// letters and the job streams.
//
// Message by message:
//   - Subject, headers and data are republished as saved, in sequence order,
//     into a stream created from the saved configuration with the saved
//     first sequence as its FirstSeq.
//   - Nats-Expected-* headers are dropped: they were conditions on the
//     original stream's sequences, not part of the message.
//   - Nats-Msg-Id is kept, so a rejected job's id and the producers'
//     deduplication survive. The new stream deduplicates within its
//     Duplicates window, and the restore republishes in seconds what was
//     stored over hours: a message whose Nats-Msg-Id repeats an earlier
//     message's of the backup (stored more than a window later in the
//     original) would be dropped. Such a message is republished with the id
//     under RestoredMsgIDHeader instead, and counted in MovedMsgIDs.
//   - A republished message gets the time of the restore: MaxAge counts
//     again from then. Messages older than MaxAge by their original time
//     are counted (Expired), and left out with SkipExpired.
//
// Before it changes anything, Restore watches every existing stream it
// would replace for LiveWindow: a pull request waiting, a push consumer
// bound, messages stored or removed, deliveries or acknowledgements are
// ErrLive, and nothing is changed. It then saves those streams (a backup
// into a temporary directory): if the restore fails part way (a publisher
// that started after the watch, a limit, the server), the streams it
// restored are deleted and the saved ones restored in their place
// (ErrRolledBack), so a failed restore leaves the server as it found it,
// not half restored.
//
// Each PubAck must name the stream and the next sequence, so that a foreign
// publisher writing into the stream meanwhile stops the restore. Finally the
// stream's count must equal the messages published (ErrCountMismatch), the
// durable consumers are created again (with no delivery state: each starts
// by its DeliverPolicy), and a stream saved sealed is sealed again.
func Restore(ctx context.Context, js jetstream.JetStream, dir string, o RestoreOptions) (*RestoreResult, error) {
	return restore(ctx, js, dir, o, true)
}

// restore is Restore; undoable false (a rollback itself) skips the live
// check and the saving of the streams it replaces.
func restore(ctx context.Context, js jetstream.JetStream, dir string, o RestoreOptions, undoable bool) (*RestoreResult, error) {
	seed := maphash.MakeSeed()
	_, streams, err := verify(dir, o.Streams, seed)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(streams, func(a, b verified) int { return restoreRank(a.entry.Name) - restoreRank(b.entry.Name) })
	existing := map[string]uint64{}
	var busy []string
	for _, v := range streams {
		cfg := v.cf.Config
		if cfg.Mirror != nil || len(cfg.Sources) > 0 {
			return nil, fmt.Errorf("backup: %s mirrors or sources other streams; restore its origins instead", cfg.Name)
		}
		s, err := js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("backup: stream %s: %w", cfg.Name, err)
		}
		n := s.CachedInfo().State.Msgs
		existing[cfg.Name] = n
		if n > 0 && !o.Replace {
			busy = append(busy, fmt.Sprintf("%s (%d messages)", cfg.Name, n))
		}
	}
	if len(busy) > 0 {
		return nil, fmt.Errorf("%w: %s; nothing restored (replace them with --replace)", ErrStreamNotEmpty, strings.Join(busy, ", "))
	}
	var replaced []string
	for _, v := range streams {
		if _, ok := existing[v.entry.Name]; ok {
			replaced = append(replaced, v.entry.Name)
		}
	}
	undo := ""
	if undoable && len(replaced) > 0 {
		if err := checkIdle(ctx, js, replaced, cmp.Or(o.LiveWindow, DefaultLiveWindow)); err != nil {
			return nil, err
		}
		if undo, err = os.MkdirTemp("", "hybridscore-restore-undo-"); err != nil {
			return nil, fmt.Errorf("backup: a directory to save the streams to replace: %w (nothing was restored)", err)
		}
		if _, err := Backup(ctx, js, undo, BackupOptions{Streams: replaced}); err != nil {
			_ = os.RemoveAll(undo)
			return nil, fmt.Errorf("backup: saving the streams to replace, to put them back should the restore fail: %w (nothing was restored)", err)
		}
	}
	res := &RestoreResult{}
	for i, v := range streams {
		n, ok := existing[v.entry.Name]
		rep, err := restoreStream(ctx, js, dir, v, seed, ok, o)
		rep.ReplacedExisting, rep.Replaced = ok, n
		res.Streams = append(res.Streams, rep)
		if err != nil {
			if !undoable {
				return res, err
			}
			touched := make([]string, 0, i+1)
			for _, t := range streams[:i+1] {
				touched = append(touched, t.entry.Name)
			}
			return res, rollback(context.WithoutCancel(ctx), js, undo, touched, existing, err)
		}
	}
	if undo != "" {
		_ = os.RemoveAll(undo)
	}
	return res, nil
}

// rollback undoes a failed restore: each stream it touched is deleted, and
// those that existed before are restored from undo, where Restore saved
// them. cause is the restore's error.
func rollback(ctx context.Context, js jetstream.JetStream, undo string, touched []string, existed map[string]uint64, cause error) error {
	var back []string
	for _, name := range touched {
		if _, ok := existed[name]; ok {
			back = append(back, name)
			continue
		}
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w; deleting the partly restored stream %s failed too: %v (the replaced streams are saved in %s)", cause, name, err, undo)
		}
	}
	if len(back) > 0 {
		if _, err := restore(ctx, js, undo, RestoreOptions{Streams: back, Replace: true}, false); err != nil {
			return fmt.Errorf("%w; putting back %s failed too: %v (they are saved in %s: restore them from there)", cause, strings.Join(back, ", "), err, undo)
		}
	}
	if undo != "" {
		_ = os.RemoveAll(undo)
	}
	return fmt.Errorf("%w (%s as before the restore): %w", ErrRolledBack, strings.Join(touched, ", "), cause)
}

func restoreStream(ctx context.Context, js jetstream.JetStream, dir string, v verified, seed maphash.Seed, exists bool, o RestoreOptions) (StreamReport, error) {
	cfg := v.cf.Config
	rep := StreamReport{Name: cfg.Name, MaxAge: cfg.MaxAge}
	if exists {
		if err := js.DeleteStream(ctx, cfg.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return rep, fmt.Errorf("backup: delete stream %s: %w", cfg.Name, err)
		}
	}
	sealed := cfg.Sealed
	cfg.Sealed = false
	// An empty stream continues its numbering after the last sequence it
	// had; a stream with messages starts at the first saved one.
	cfg.FirstSeq = v.entry.FirstSeq
	if v.entry.Messages == 0 {
		cfg.FirstSeq = v.cf.State.LastSeq + 1
	}
	if cfg.FirstSeq <= 1 {
		cfg.FirstSeq = 0
	}
	// The server stamps its own version metadata (_nats.*) on every stream.
	for k := range cfg.Metadata {
		if strings.HasPrefix(k, "_nats.") {
			delete(cfg.Metadata, k)
		}
	}
	s, err := createEmpty(ctx, js, cfg)
	if err != nil {
		return rep, err
	}
	next := max(cfg.FirstSeq, 1) // the sequence the next PubAck must carry
	rep.SequencesKept = true
	if err := publishAll(ctx, js, dir, v, seed, o, &rep, next); err != nil {
		return rep, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("backup: stream %s: %w", cfg.Name, err)
	}
	if info.State.Msgs != rep.Restored {
		return rep, fmt.Errorf("%w: %s holds %d messages, %d were published (of %d in the backup); its limits (MaxMsgs %d, MaxBytes %d, MaxMsgsPerSubject %d, MaxAge %s) may have dropped some",
			ErrCountMismatch, cfg.Name, info.State.Msgs, rep.Restored, v.entry.Messages, cfg.MaxMsgs, cfg.MaxBytes, cfg.MaxMsgsPerSubject, cfg.MaxAge)
	}
	for _, cc := range v.cf.Consumers {
		for k := range cc.Metadata {
			if strings.HasPrefix(k, "_nats.") {
				delete(cc.Metadata, k)
			}
		}
		if _, err := js.CreateConsumer(ctx, cfg.Name, cc); err != nil {
			return rep, fmt.Errorf("backup: create consumer %s on %s: %w", cc.Durable, cfg.Name, err)
		}
		rep.Consumers = append(rep.Consumers, cc.Durable)
	}
	if sealed {
		cfg.Sealed = true
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return rep, fmt.Errorf("backup: seal stream %s: %w", cfg.Name, err)
		}
	}
	return rep, nil
}

// errCodeStoreCreate is nats-server's "error creating store for stream"
// (10049), which nats.go names no constant for.
const errCodeStoreCreate jetstream.ErrorCode = 10049

// createEmpty creates a stream and makes sure it starts empty. A file
// stream deleted while an earlier deletion of the same name is still being
// cleaned up on the server can come back, created again, with the messages
// it had, or fail to be created at all ("error creating store", 10049),
// both seen with nats-server 2.15 when one name is replaced in quick
// succession; either way it is tried again after a pause.
func createEmpty(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	for attempt := 1; ; attempt++ {
		s, err := js.CreateStream(ctx, cfg)
		var apiErr *jetstream.APIError
		if err != nil && (attempt == 5 || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeStoreCreate) {
			return nil, fmt.Errorf("backup: create stream %s: %w", cfg.Name, err)
		}
		if err == nil {
			st := s.CachedInfo().State
			if st.Msgs == 0 && st.LastSeq+1 == max(cfg.FirstSeq, 1) {
				return s, nil
			}
			if attempt == 5 {
				return nil, fmt.Errorf("backup: stream %s, created again, holds %d messages up to %d of its deleted predecessor", cfg.Name, st.Msgs, st.LastSeq)
			}
			if err := js.DeleteStream(ctx, cfg.Name); err != nil {
				return nil, fmt.Errorf("backup: delete stream %s: %w", cfg.Name, err)
			}
		}
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// publishAll republishes a stream's messages in order with at most
// MaxPending PubAcks outstanding, checking each PubAck in order.
func publishAll(ctx context.Context, js jetstream.JetStream, dir string, v verified, seed maphash.Seed, o RestoreOptions, rep *StreamReport, next uint64) error {
	f, err := os.Open(filepath.Join(dir, v.entry.MessagesFile))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	p := &republisher{ctx: ctx, js: js, v: v, seed: seed, o: o, rep: rep, next: next,
		name: v.entry.Name, now: time.Now(), seen: map[string]bool{}, maxPending: o.MaxPending}
	if p.maxPending <= 0 {
		p.maxPending = 512
	}
	p.report()
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var m Message
			if err := json.Unmarshal(line, &m); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrChecksum, v.entry.MessagesFile, err)
			}
			if msg := p.prepare(&m); msg != nil {
				if err := p.send(msg, m.Seq); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("backup: %s: %w", v.entry.MessagesFile, err)
		}
	}
	for len(p.queue) > 0 {
		if err := p.await(); err != nil {
			return err
		}
	}
	return nil
}

// republisher republishes one stream's messages and checks their PubAcks.
type republisher struct {
	ctx        context.Context
	js         jetstream.JetStream
	v          verified
	seed       maphash.Seed
	o          RestoreOptions
	rep        *StreamReport
	name       string
	now        time.Time
	next       uint64          // the sequence the next PubAck must name
	seen       map[string]bool // ids of v.repeats already published
	queue      []pendingAck
	maxPending int
}

type pendingAck struct {
	fut jetstream.PubAckFuture
	seq uint64 // the original sequence
}

func (p *republisher) report() {
	if p.o.Progress != nil {
		p.o.Progress(Progress{Stream: p.name, Done: p.rep.Restored, Total: p.v.entry.Messages})
	}
}

// prepare returns the message to publish for m, or nil when m is skipped
// (past the stream's max age, with SkipExpired). A Nats-Msg-Id seen before
// in this stream moves to RestoredMsgIDHeader, so the new stream's
// duplicate window does not drop the copy.
func (p *republisher) prepare(m *Message) *nats.Msg {
	if maxAge := p.v.cf.Config.MaxAge; maxAge > 0 && p.now.Sub(m.Time) > maxAge {
		p.rep.Expired++
		if p.o.SkipExpired {
			p.rep.SkippedExpired++
			p.rep.SequencesKept = false
			return nil
		}
	}
	msg := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: republishHeader(m.Header)}
	if id := msg.Header.Get(jetstream.MsgIDHeader); id != "" && p.v.repeats[maphash.String(p.seed, id)] {
		if p.seen[id] {
			msg.Header.Del(jetstream.MsgIDHeader)
			msg.Header.Set(RestoredMsgIDHeader, id)
			p.rep.MovedMsgIDs++
		}
		p.seen[id] = true
	}
	return msg
}

// send publishes msg (original sequence seq): the first synchronously, the
// rest asynchronously with at most maxPending PubAcks outstanding.
func (p *republisher) send(msg *nats.Msg, seq uint64) error {
	if p.rep.Restored == 0 && len(p.queue) == 0 {
		// The first one synchronously: a stream just created may answer
		// "no responders" for a moment, and a retried asynchronous publish
		// would land after later ones.
		ack, err := p.js.PublishMsg(p.ctx, msg)
		if err != nil {
			return fmt.Errorf("backup: republish message %d of %s: %w", seq, p.name, err)
		}
		return p.check(ack, seq, msg.Header.Get(jetstream.MsgIDHeader))
	}
	// No retries: a retried publish would break the order; a failure stops
	// the restore instead.
	fut, err := p.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
	if err != nil {
		return fmt.Errorf("backup: republish message %d of %s: %w", seq, p.name, err)
	}
	p.queue = append(p.queue, pendingAck{fut, seq})
	if len(p.queue) >= p.maxPending {
		return p.await()
	}
	return nil
}

// await checks the oldest outstanding PubAck.
func (p *republisher) await() error {
	a := p.queue[0]
	p.queue = p.queue[1:]
	select {
	case ack := <-a.fut.Ok():
		return p.check(ack, a.seq, a.fut.Msg().Header.Get(jetstream.MsgIDHeader))
	case err := <-a.fut.Err():
		return fmt.Errorf("backup: republish message %d of %s: %w", a.seq, p.name, err)
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// check holds a PubAck to the stream, no duplicate drop, and the next
// sequence in order.
func (p *republisher) check(ack *jetstream.PubAck, seq uint64, msgID string) error {
	switch {
	case ack.Stream != p.name:
		return fmt.Errorf("backup: message %d of %s was stored in stream %s", seq, p.name, ack.Stream)
	case ack.Duplicate:
		return fmt.Errorf("backup: message %d of %s was dropped as a duplicate of %d (Nats-Msg-Id %q)", seq, p.name, ack.Sequence, msgID)
	case ack.Sequence != p.next:
		return fmt.Errorf("backup: message %d of %s stored at %d, expected %d: something else publishes to the stream (stop workers and producers during a restore)", seq, p.name, ack.Sequence, p.next)
	}
	if ack.Sequence != seq {
		p.rep.SequencesKept = false
	}
	p.next++
	p.rep.Restored++
	p.report()
	return nil
}

// republishHeader returns h without the Nats-Expected-* publish conditions,
// which referred to the original stream's sequences.
func republishHeader(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, vs := range h {
		if strings.HasPrefix(strings.ToLower(k), "nats-expected-") {
			continue
		}
		out[k] = vs
	}
	return out
}
