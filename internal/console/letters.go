package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/consumer"
	"github.com/hybridscore/hybridscore/internal/deadletter"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// maxScan bounds the letters one page reads to fill itself when the index
// is not ready and a filter is rare: the page then ends early and its next
// link continues from where the reading stopped.
const maxScan = 2000

// maxShownPayload bounds the payload a letter's page shows.
const maxShownPayload = 256 << 10

// LetterRow is one dead letter in a list.
type LetterRow struct {
	Seq                                    uint64
	Time                                   time.Time
	Reason, Lane, JobID, Error, Delivery   string
	Subject, OriginalSeq, PayloadTruncated string
}

// LettersView is a page of dead letters.
type LettersView struct {
	Rows                []LetterRow
	Reason, Lane, JobID string
	After, Next         uint64
	More                bool
	Counts              []ReasonCount
	Total               int
	// Matching is how many letters the filter selects, by the counts.
	Matching int
	// Reasons are the reasons among Counts, each once.
	Reasons []string
	// Refused are the reasons among the letters the filter selects whose
	// payloads a replay publishes only to be refused again, when the
	// filter names no reason (a lane's letters).
	Refused []string
	Ready   bool
	Err     string
	// CountErr: the counts could not be brought up to date; they are the
	// last ones read.
	CountErr string
	// From and To number the page's letters among those the filter
	// selects, of Of (0: not known yet); Prev is where the page before
	// starts, when HasPrev.
	From, To, Of int
	Prev         uint64
	HasPrev      bool
}

func row(m *jetstream.RawStreamMsg) LetterRow {
	h := m.Header
	return LetterRow{Seq: m.Sequence, Time: m.Time, Reason: h.Get(consumer.HeaderReason), Lane: deadletter.Lane(h),
		JobID: h.Get(consumer.HeaderJobID), Error: h.Get(consumer.HeaderError), Delivery: h.Get(consumer.HeaderDelivery),
		Subject: h.Get(consumer.HeaderSubject), OriginalSeq: h.Get(consumer.HeaderStreamSeq)}
}

// filterOf reads a filter from a form. Reasons are lower-case codes, so a
// reason is taken in any case; spaces around any value are dropped (a
// pasted "invalid_json " selects what "invalid_json" does).
func filterOf(r *http.Request) deadletter.Filter {
	var f deadletter.Filter
	if v := formReason(r); v != "" {
		f.Reason = []string{v}
	}
	if v := strings.TrimSpace(r.FormValue("lane")); v != "" {
		f.Lane = []string{v}
	}
	if v := strings.TrimSpace(r.FormValue("job_id")); v != "" {
		f.JobID = []string{v}
	}
	return f
}

func formReason(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.FormValue("reason")))
}

// Letters returns up to n dead letters after sequence after that f selects,
// oldest first, reading them by sequence: with a reason or job id, from the
// index of sequences when it is ready; otherwise each next letter on the
// lane's subject with one get. next is the sequence the next page starts
// after.
func (c *Console) Letters(ctx context.Context, after uint64, f deadletter.Filter, n int) (rows []LetterRow, next uint64, more bool, err error) {
	if err := c.connected(); err != nil {
		return nil, after, false, err
	}
	dlq, err := c.js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return nil, after, false, fmt.Errorf("stream %s: %w", topology.DLQStream, err)
	}
	next = after
	if len(f.Reason)+len(f.JobID) > 0 {
		if seqs, ok := c.tally.find(after, f, n+1); ok {
			for i, seq := range seqs {
				if i == n {
					return rows, next, true, nil
				}
				m, err := dlq.GetMsg(ctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue // deleted since it was counted
				}
				if err != nil {
					return rows, next, false, err
				}
				rows, next = append(rows, row(m)), seq
			}
			return rows, next, false, nil
		}
	}
	subject := topology.DLQPrefix + ">"
	if len(f.Lane) == 1 {
		subject = topology.DLQPrefix + f.Lane[0]
	}
	seq := after + 1
	for scanned := 0; ; scanned++ {
		if scanned == maxScan {
			return rows, next, true, nil
		}
		m, err := dlq.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return rows, next, false, nil
		}
		if err != nil {
			return rows, next, false, err
		}
		if f.Match(m.Header) {
			if len(rows) == n {
				return rows, next, true, nil
			}
			rows = append(rows, row(m))
		}
		next, seq = m.Sequence, m.Sequence+1
	}
}

func (c *Console) lettersPage(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseUint(r.FormValue("after"), 10, 64)
	f := filterOf(r)
	v := LettersView{Reason: formReason(r), Lane: strings.TrimSpace(r.FormValue("lane")), JobID: strings.TrimSpace(r.FormValue("job_id")), After: after}
	var err error
	v.Rows, v.Next, v.More, err = c.Letters(r.Context(), after, f, c.cfg.PageSize)
	code := http.StatusOK
	if err != nil {
		v.Err, code = err.Error(), http.StatusServiceUnavailable
	}
	if before, total, prev, hasPrev, ok := c.tally.position(after, f, c.cfg.PageSize); ok {
		v.Prev, v.HasPrev, v.Of = prev, hasPrev, total
		if len(v.Rows) > 0 {
			v.From, v.To = before+1, before+len(v.Rows)
		}
	}
	var cerr error
	v.Counts, v.Total, v.Ready, cerr = c.tally.counts()
	if cerr != nil {
		v.CountErr = cerr.Error()
	}
	for _, rc := range v.Counts {
		if len(f.JobID) == 0 && f.MatchFields(rc.Reason, rc.Lane, "") {
			v.Matching += rc.N
			if v.Reason == "" && refusedAgain(rc.Reason) && !slices.Contains(v.Refused, rc.Reason) {
				v.Refused = append(v.Refused, rc.Reason)
			}
		}
		if !slices.Contains(v.Reasons, rc.Reason) {
			v.Reasons = append(v.Reasons, rc.Reason)
		}
	}
	c.page(w, r, code, "deadletters.html", v)
}

// LetterView is one dead letter's page.
type LetterView struct {
	Row     LetterRow
	Headers []Header
	Payload string
	// PayloadNote says how the shown payload differs from the stored one.
	PayloadNote string
}

// Header is one header line of a message.
type Header struct{ Name, Value string }

func headers(m *jetstream.RawStreamMsg) []Header {
	var hs []Header
	for k, vs := range m.Header {
		for _, v := range vs {
			hs = append(hs, Header{k, v})
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs
}

// showPayload returns a payload as the page shows it, what was cut off
// and how it differs from the bytes stored: JSON is indented; a payload
// that is not UTF-8 is quoted with its bad bytes escaped (\xNN), which a
// browser would otherwise show as "�" and hide the very fault.
func showPayload(b []byte) (text, trunc, note string) {
	if len(b) > maxShownPayload {
		b, trunc = b[:maxShownPayload], fmt.Sprintf("(first %d bytes shown)", maxShownPayload)
	}
	if !utf8.Valid(b) {
		return fmt.Sprintf("%q", b), trunc, "(not valid UTF-8: quoted, each invalid byte escaped as \\xNN)"
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		if out.Len() != len(b) {
			note = "(indented for reading; the stored bytes differ in white space only)"
		}
		return out.String(), trunc, note
	}
	return string(b), trunc, ""
}

func (c *Console) getLetter(ctx context.Context, r *http.Request) (*jetstream.RawStreamMsg, jetstream.Stream, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return nil, nil, fmt.Errorf("%w: %w", errNoLetter, errNotSeq)
	}
	if err := c.connected(); err != nil {
		return nil, nil, err
	}
	dlq, err := c.js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", topology.DLQStream, err)
	}
	m, err := dlq.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, fmt.Errorf("%w %d: deleted (or replayed with delete), or never stored", errNoLetter, seq)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return m, dlq, nil
}

// errNoLetter: the stream answered, and has no such dead letter; errNotSeq:
// the address names no sequence at all.
var (
	errNoLetter = errors.New("no dead letter")
	errNotSeq   = errors.New("not a sequence number")
)

// letterError shows why a letter could not be had: 404 when the stream
// has none, 503 when it could not be asked (NATS down, a timeout): an
// outage must not read as "no such letter".
func (c *Console) letterError(w http.ResponseWriter, r *http.Request, title string, err error) {
	code, text := http.StatusServiceUnavailable, "NATS did not answer, so nothing is known about this dead letter: "+err.Error()
	switch {
	case errors.Is(err, errNotSeq):
		code, text = http.StatusNotFound, fmt.Sprintf("%q is not a dead letter's sequence number (a whole number from 1, as the list shows).", r.PathValue("seq"))
	case errors.Is(err, errNoLetter):
		code, text = http.StatusNotFound, fmt.Sprintf("No dead letter %s: deleted (or replayed with delete), or never stored.", r.PathValue("seq"))
	}
	c.page(w, r, code, "message.html", message{Title: title, Text: text, Back: "/deadletters"})
}

func (c *Console) letterPage(w http.ResponseWriter, r *http.Request) {
	m, _, err := c.getLetter(r.Context(), r)
	if err != nil {
		c.letterError(w, r, "Dead letter", err)
		return
	}
	v := LetterView{Row: row(m), Headers: headers(m)}
	v.Payload, v.Row.PayloadTruncated, v.PayloadNote = showPayload(m.Data)
	c.page(w, r, http.StatusOK, "letter.html", v)
}

func (c *Console) replayOne(w http.ResponseWriter, r *http.Request) {
	m, dlq, err := c.getLetter(r.Context(), r)
	if err != nil {
		c.letterError(w, r, "Not replayed", err)
		return
	}
	del := r.FormValue("delete") != ""
	published, err := deadletter.Replay(r.Context(), c.js, dlq, m, del)
	if err != nil {
		c.failed(w, r, http.StatusConflict, message{Title: "Not replayed", Text: err.Error(), Back: "/deadletters"})
		return
	}
	if del {
		c.tally.deleted(m.Sequence)
	}
	job, subject := m.Header.Get(consumer.HeaderJobID), m.Header.Get(consumer.HeaderSubject)
	c.log("dead letter replayed", "seq", m.Sequence, "job_id", job, "subject", subject, "deleted", del, "published", published)
	deleted := map[bool]string{true: "; the dead letter is deleted"}[del]
	out := message{Title: "Replayed", Text: fmt.Sprintf("Replayed dead letter %d: job %s to %s%s.", m.Sequence, job, subject, deleted) + c.pausedNote(r.Context(), subject),
		Back: "/jobs?job_id=" + urlQuery(job) + "&lane=" + urlQuery(topology.Lane(subject))}
	if !published {
		out.Title = "Not published again"
		out.Text = fmt.Sprintf("Dead letter %d was replayed less than the jobs stream's duplicate window ago: the server kept that copy of job %s and dropped this one%s.",
			m.Sequence, job, deleted)
	}
	c.done(w, r, out)
}

func (c *Console) deleteOne(w http.ResponseWriter, r *http.Request) {
	m, dlq, err := c.getLetter(r.Context(), r)
	if err != nil {
		c.letterError(w, r, "Not deleted", err)
		return
	}
	if err := dlq.DeleteMsg(r.Context(), m.Sequence); err != nil {
		c.failed(w, r, http.StatusConflict, message{Title: "Not deleted", Text: err.Error(), Back: "/deadletters"})
		return
	}
	c.tally.deleted(m.Sequence)
	c.log("dead letter deleted", "seq", m.Sequence, "job_id", m.Header.Get(consumer.HeaderJobID))
	c.done(w, r, message{Title: "Deleted",
		Text: fmt.Sprintf("Deleted dead letter %d (job %s).", m.Sequence, m.Header.Get(consumer.HeaderJobID)),
		// Back to the letters like it: the list the letter was most
		// likely opened from.
		Back: lettersURL(deadletter.Filter{Reason: []string{m.Header.Get(consumer.HeaderReason)}, Lane: []string{deadletter.Lane(m.Header)}})})
}

// Bounds of a replay of a set: the whole, under the HTTP server's write
// timeout (WriteTimeout, publisher/console.go), and each letter's step.
const (
	replaySetTimeout  = 4 * time.Minute
	replayStepTimeout = 10 * time.Second
)

// replaySet replays every dead letter a filter selects, as `publisher dlq
// replay` does: a filter is required, each letter goes back to its subject
// with a fresh delivery budget, and is deleted when asked.
func (c *Console) replaySet(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r)
	if f.Empty() {
		c.page(w, r, http.StatusBadRequest, "message.html", message{Title: "Not replayed",
			Text: "Choose what to replay: a reason, a lane or a job id.", Back: "/deadletters"})
		return
	}
	if err := c.connected(); err != nil {
		c.page(w, r, http.StatusServiceUnavailable, "message.html", message{Title: "Not replayed",
			Text: "NATS did not answer, so nothing was replayed: " + err.Error(), Back: lettersURL(f)})
		return
	}
	del := r.FormValue("delete") != ""
	// Well inside the HTTP server's write timeout, so the outcome page is
	// always sent; each letter has a bound of its own, so NATS going away
	// mid-way stops the replay in seconds, not at the end of the whole.
	ctx, cancel := context.WithTimeout(r.Context(), replaySetTimeout)
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, replayStepTimeout)
	dlq, err := c.js.Stream(sctx, topology.DLQStream)
	scancel()
	n, dups := 0, 0
	var subjects []string
	replay := func(m *jetstream.RawStreamMsg) error {
		if !f.Match(m.Header) {
			return nil
		}
		if s := m.Header.Get(consumer.HeaderSubject); !slices.Contains(subjects, s) && len(subjects) < 100 {
			subjects = append(subjects, s)
		}
		sctx, scancel := context.WithTimeout(ctx, replayStepTimeout)
		defer scancel()
		published, err := deadletter.Replay(sctx, c.js, dlq, m, del)
		if err != nil {
			return err
		}
		if del {
			c.tally.deleted(m.Sequence)
		}
		if published {
			n++
		} else {
			dups++
		}
		return nil
	}
	if err == nil {
		if seqs, ok := c.tally.find(0, f, math.MaxInt); ok {
			for _, seq := range seqs {
				gctx, gcancel := context.WithTimeout(ctx, replayStepTimeout)
				m, gerr := dlq.GetMsg(gctx, seq)
				gcancel()
				if errors.Is(gerr, jetstream.ErrMsgNotFound) {
					continue
				}
				if err = gerr; err == nil {
					err = replay(m)
				}
				if err != nil {
					break
				}
			}
		} else {
			err = deadletter.Each(ctx, c.js, f, replay)
		}
	}
	c.log("dead letters replayed", "count", n, "not_published", dups, "reason", f.Reason, "lane", f.Lane, "job_id", f.JobID, "deleted", del, "error", err)
	text := fmt.Sprintf("Replayed %s%s.", plural(n, "dead letter"), map[bool]string{true: ", each deleted once published"}[del && n > 0])
	if dups > 0 {
		text += fmt.Sprintf(" %s not published again: replayed less than the jobs stream's duplicate window ago, the server kept the earlier copy.",
			plural(dups, "dead letter"))
	}
	if err != nil {
		c.failed(w, r, http.StatusConflict, message{Title: "Replay stopped", Text: text + " Then: " + err.Error(), Back: lettersURL(f)})
		return
	}
	if n > 0 {
		text += c.pausedNote(r.Context(), subjects...)
	}
	c.done(w, r, message{Title: "Replayed", Text: text, Back: lettersURL(f)})
}

// pausedNote says which of the consumers that take jobs on subjects is
// paused, so a replay's outcome does not read as if the jobs were on their
// way: they wait until it resumes. "" when none is (or none could be
// asked).
func (c *Console) pausedNote(ctx context.Context, subjects ...string) string {
	var notes []string
	for _, cl := range classes {
		prefix := topology.JobsPrefix
		if cl.stream == topology.BulkStream {
			prefix = topology.BulkPrefix
		}
		if !slices.ContainsFunc(subjects, func(s string) bool { return strings.HasPrefix(s, prefix) }) {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := c.js.Consumer(ictx, cl.stream, cl.consumer)
		cancel()
		if err == nil && info.CachedInfo().Paused {
			notes = append(notes, fmt.Sprintf(" The %s consumer %s is paused for %s more (nats consumer resume %s %s): the replayed jobs wait in %s until then.",
				cl.name, cl.consumer, info.CachedInfo().PauseRemaining.Round(time.Second), cl.stream, cl.consumer, cl.stream))
		}
	}
	return strings.Join(notes, "")
}

// lettersURL is the list of the dead letters f selects.
func lettersURL(f deadletter.Filter) string {
	q := url.Values{}
	for k, vs := range map[string][]string{"reason": f.Reason, "lane": f.Lane, "job_id": f.JobID} {
		if len(vs) > 0 {
			q.Set(k, strings.Join(vs, ","))
		}
	}
	if len(q) == 0 {
		return "/deadletters"
	}
	return "/deadletters?" + q.Encode()
}

// plural is "1 dead letter", "2 dead letters".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
