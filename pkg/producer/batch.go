package producer

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/hybridscore/hybridscore/internal/topology"
	"github.com/hybridscore/hybridscore/pkg/job"
)

// BatchOptions configure Batch.
type BatchOptions struct {
	Source Source
	Lane   string // jobs go to scoring.jobs.<Lane>, or scoring.bulk.<Lane> with Bulk
	// Bulk publishes to the bulk class (stream SCORING_BULK): served after
	// interactive jobs, with a guaranteed share of each worker, so a large
	// batch never delays live pipeline jobs.
	Bulk bool
	// ReplySubject, if set, receives a copy of this batch's results
	// (replacing each job's own reply_subject); it must lie under
	// scoring.results. so they are stored. That is a second durable write
	// a job: empty (the default of publisher batch), each job keeps the
	// reply_subject it names, if any, and the results are read where the
	// worker stores each, on its job's own subject.
	ReplySubject string
	Rate         float64       // jobs per second; 0 means unlimited
	MaxPending   int           // jobs published and not yet answered; 0 means 10000
	Timeout      time.Duration // wait for results after the last publish; 0 means 5 min
	// PubAckTimeout bounds the wait for a job's PubAck; 0 means 30 s. A
	// stream that takes a job and never answers (a store the server
	// failed to create) would otherwise hold the batch for ever.
	PubAckTimeout time.Duration
	Out           io.Writer // results, one JSON object per line
	// Answered holds job ids already in Out (--resume): they are not
	// published again.
	Answered []string
	// Progress, if set, is told about each result (total may be 0 when
	// unknown).
	Progress func(results int)
	// OnInvalid, if set, is told about input lines that are not jobs; they
	// are skipped.
	OnInvalid func(err error)
}

// Summary is what a batch did.
type Summary struct {
	Read, Skipped, Published, Duplicates, Invalid int
	// DeadLettered counts jobs not published because they were
	// dead-lettered before; DeadLettersUnread says why the dead letters
	// could not be read (such jobs are then published again).
	DeadLettered      int
	DeadLettersUnread string
	// DeadLetteredNow counts jobs of this run dead-lettered without a
	// result (max_deliveries, job_id_conflict, …): not waited for.
	DeadLetteredNow int
	// Conflicts are job ids of the run reused for other content, never
	// answered with the other job's result: a worker dead-lettered the job
	// as job_id_conflict (its job_id was answered before), or the jobs
	// stream dropped it as a copy of a job published with the same job_id
	// within its duplicate window and the answer that came is that job's.
	// Publish them again under new job ids.
	Conflicts                   []string
	Results, Missing            int
	ByStatus                    map[string]int
	ByReason                    map[string]int
	CacheTiers                  map[string]int
	WorkerLatencyMS, EndToEndMS []float64
	Elapsed                     time.Duration
}

type resultView struct {
	JobID          string  `json:"job_id"`
	Status         string  `json:"status"`
	FallbackReason *string `json:"fallback_reason"`
	Cache          *struct {
		Task    string `json:"task"`
		Pattern string `json:"pattern"`
	} `json:"cache"`
	LatencyMS float64 `json:"latency_ms"`
}

// Batch publishes every job of o.Source and collects their results from the
// result stream into o.Out. It is idempotent: a job already answered (its
// result on o.ReplySubject, or stored on its own job.ResultSubject) is not
// published again, its stored result is written to o.Out; nor is a job
// dead-lettered on the lane before (the summary counts both). It returns ErrNoResult (with the summary) when
// some job got no result before the timeout.
func (c *Client) Batch(ctx context.Context, o BatchOptions) (*Summary, error) {
	if o.MaxPending <= 0 {
		o.MaxPending = 10000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if err := checkLane(o.Lane); err != nil {
		return nil, err
	}
	if o.ReplySubject != "" && (!strings.HasPrefix(o.ReplySubject, topology.ResultsPrefix) || !job.ValidSubject(o.ReplySubject)) {
		return nil, fmt.Errorf("reply subject %q must be a subject under %s", o.ReplySubject, topology.ResultsPrefix)
	}
	if o.ReplySubject != "" && strings.Count(o.ReplySubject, ".") == 3 {
		// scoring.results.<lane>.<job> is where a job's result is stored.
		return nil, fmt.Errorf("reply subject %q has the shape of a job's result subject; use scoring.results.<lane>.batch.<run>", o.ReplySubject)
	}
	b := newBatch(o)
	results, err := c.JS.Stream(ctx, topology.ResultsStream)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	b.results = results
	// The results of earlier runs on the reply subject: all of them are
	// read before a job is published, so none is published again. Without
	// one, the results are read from the jobs' own subjects of the lane,
	// from now on (the consumer exists before any job is looked up, so a
	// result stored after its lookup is read here), and only this run's
	// jobs are taken: the lane may serve others.
	var earlier uint64
	var read jetstream.OrderedConsumerConfig
	if o.ReplySubject != "" {
		info, err := results.Info(ctx, jetstream.WithSubjectFilter(o.ReplySubject))
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		earlier = info.State.Subjects[o.ReplySubject]
		read = jetstream.OrderedConsumerConfig{FilterSubjects: []string{o.ReplySubject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	} else {
		b.mine = map[uint64]struct{}{}
		read = jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.ResultsPrefix + o.Lane + ".*"}, DeliverPolicy: jetstream.DeliverNewPolicy}
	}
	// Nor is a job dead-lettered on the lane before (publisher dlq replay
	// does that, after a fix); one dead-lettered during the run without a
	// result is not waited for.
	if stopDead := b.watchDeadLetters(ctx, c.JS); stopDead != nil {
		defer stopDead()
	}
	cons, err := c.JS.OrderedConsumer(ctx, topology.ResultsStream, read)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { b.onResult(m.Data(), m.Headers().Get(headerDigest), time.Now()) })
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer cc.Stop()
	// Waits are woken by results, by the timeout, and by ctx.
	stop := context.AfterFunc(ctx, b.wake)
	defer stop()
	b.catchUp(ctx, &b.received, earlier)
	b.catchUp(ctx, &b.deadRead, b.deadBefore)
	pjs, err := jetstream.New(c.NC, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(cmp.Or(o.PubAckTimeout, 30*time.Second)))
	if err != nil {
		return nil, err
	}
	pubErr := b.publishAll(ctx, pjs)
	pjs.CleanupPublisher()
	b.awaitResults(ctx)
	return b.s, b.outcome(ctx, pubErr)
}

// batch is one Batch run: the jobs published and not yet answered, the
// results written, and the summary. mu guards everything below it; cond is
// signalled whenever a job is answered or given up, and on timeouts.
type batch struct {
	o     BatchOptions
	start time.Time

	// results is looked up for each job's own stored result (a job
	// answered under another reply subject).
	results jetstream.Stream

	mu       sync.Mutex
	cond     *sync.Cond
	s        *Summary
	received uint64 // result messages read, duplicates included
	// dead holds the hashes of the lane's dead-lettered job ids; deadRead
	// counts the dead letters read, of which deadBefore were stored before
	// the run.
	dead                 map[uint64]letterOf // job id hash → what its letter says of the job
	deadRead, deadBefore uint64
	written              map[uint64]struct{} // hashes of answered ids: 16 bytes a job, not a job
	// mine, without a reply subject, holds the hashes of the ids read from
	// the source: results of other jobs of the lane are not this run's.
	mine    map[uint64]struct{}
	pending map[uint64]time.Time // published, unanswered: when published
	// digests holds the digest of each published, unanswered job: an
	// answer for other content (the job_id's earlier user's, when the
	// stream dropped this job as a duplicate) is never taken as its own.
	digests map[uint64]string
	// contents holds, for each job_id of the source, the hash of the
	// digest of the first job that had it (16 bytes a job).
	contents map[uint64]uint64
	// closed: the run is over; a late answer changes nothing.
	closed bool
	// unseen holds the ids of jobs the stream dropped as duplicates whose
	// answer has not come: pollDropped looks on each job's own subject.
	unseen  map[uint64]string
	polling bool
	out     *bufio.Writer
	werr    error
}

func newBatch(o BatchOptions) *batch {
	b := &batch{o: o, start: time.Now(), s: &Summary{ByStatus: map[string]int{}, ByReason: map[string]int{}, CacheTiers: map[string]int{}},
		dead: map[uint64]letterOf{}, written: map[uint64]struct{}{}, pending: map[uint64]time.Time{}, digests: map[uint64]string{}, contents: map[uint64]uint64{}, unseen: map[uint64]string{}, out: bufio.NewWriterSize(o.Out, 256<<10)}
	b.cond = sync.NewCond(&b.mu)
	for _, id := range o.Answered {
		b.written[xxhash.Sum64String(id)] = struct{}{}
	}
	return b
}

func (b *batch) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}

// onResult writes a result that arrived, once per job, and counts it.
//
// digest is the answer's Hybridscore-Digest ("" when it has none, or was
// compared already): a job takes only an answer for its own content.
func (b *batch) onResult(data []byte, digest string, at time.Time) {
	var r resultView
	if json.Unmarshal(data, &r) != nil || r.JobID == "" {
		b.mu.Lock()
		b.received++
		b.cond.Broadcast()
		b.mu.Unlock()
		return
	}
	h := xxhash.Sum64String(r.JobID)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.received++
	_, ours := b.mine[h]
	if _, dup := b.written[h]; dup || (b.mine != nil && !ours) {
		b.cond.Broadcast()
		return
	}
	if b.closed {
		return
	}
	if want, ok := b.digests[h]; ok && digest != "" && digest != want {
		// The answer of another job that had this job_id: never this
		// one's. Either the stream dropped this job as a duplicate, and
		// nothing else will come for it, or a worker will dead-letter it
		// as job_id_conflict: it is not waited for either way.
		b.written[h] = struct{}{}
		delete(b.pending, h)
		delete(b.digests, h)
		b.s.Conflicts = append(b.s.Conflicts, r.JobID)
		b.cond.Broadcast()
		return
	}
	delete(b.digests, h)
	b.written[h] = struct{}{}
	if _, err := b.out.Write(append(data, '\n')); err != nil && b.werr == nil {
		b.werr = err
	}
	b.s.count(&r)
	if t, ok := b.pending[h]; ok {
		b.s.EndToEndMS = append(b.s.EndToEndMS, float64(at.Sub(t).Microseconds())/1000)
		delete(b.pending, h)
	}
	if b.o.Progress != nil {
		b.o.Progress(b.s.Results)
	}
	b.cond.Broadcast()
}

// count adds one result to the summary.
func (s *Summary) count(r *resultView) {
	s.Results++
	s.ByStatus[r.Status]++
	if r.FallbackReason != nil {
		s.ByReason[*r.FallbackReason]++
	}
	if r.Cache != nil {
		s.CacheTiers[r.Cache.Task]++
		s.CacheTiers[r.Cache.Pattern]++
	}
	if r.Status == job.StatusScored || r.Status == job.StatusDegraded {
		s.WorkerLatencyMS = append(s.WorkerLatencyMS, r.LatencyMS)
	}
}

// unpend gives up waiting for a job that was not stored.
func (b *batch) unpend(h uint64) {
	b.mu.Lock()
	delete(b.pending, h)
	delete(b.digests, h)
	b.cond.Broadcast()
	b.mu.Unlock()
}

type inflight struct {
	fut  jetstream.PubAckFuture
	h    uint64
	id   string
	span trace.Span // the job message's, ended at its PubAck
}

// watchAcks reads the PubAcks of the published jobs in order, counting
// duplicates and giving up jobs that were not stored (no PubAck within
// PubAckTimeout, or ctx ended first); it returns the first error.
func (b *batch) watchAcks(ctx context.Context, acks <-chan inflight) error {
	var first error
	for f := range acks {
		var err error
		select {
		case a := <-f.fut.Ok():
			if a.Duplicate {
				b.duplicate(ctx, f)
			}
		case err = <-f.fut.Err():
		case <-ctx.Done():
			err = fmt.Errorf("job %s: no PubAck before the batch stopped: %w", f.id, ctx.Err())
		}
		if err != nil {
			if first == nil {
				first = err
			}
			b.unpend(f.h)
			f.span.SetStatus(codes.Error, err.Error())
		}
		f.span.End()
	}
	return first
}

// duplicate handles a job the jobs stream dropped as a copy of one with
// its job_id published within the duplicate window: that job's answer is
// this one's only if it is for the same content (onResult compares). The
// answer may be stored already, before the run's results consumer
// started, or go to that job's reply subject rather than the run's:
// pollDropped looks for it on the job's own subject.
func (b *batch) duplicate(ctx context.Context, f inflight) {
	b.mu.Lock()
	b.s.Duplicates++
	b.unseen[f.h] = f.id
	start := !b.polling
	b.polling = true
	b.mu.Unlock()
	if start {
		go b.pollDropped(ctx)
	}
}

// pollDropped looks for the answers of the unseen jobs on their own
// subjects, at once and then twice a second, until the run ends.
func (b *batch) pollDropped(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		ids := make(map[uint64]string, len(b.unseen))
		for h, id := range b.unseen {
			if _, waiting := b.pending[h]; waiting {
				ids[h] = id
			} else {
				delete(b.unseen, h)
			}
		}
		b.mu.Unlock()
		for h, id := range ids {
			if m, err := b.results.GetLastMsgForSubject(ctx, job.ResultSubject(b.o.Lane, id)); err == nil {
				b.mu.Lock()
				delete(b.unseen, h)
				b.mu.Unlock()
				b.onResult(m.Data, m.Header.Get(headerDigest), time.Now())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishAll publishes every job of the source not already answered,
// keeping at most MaxPending unanswered and to the rate; it returns why it
// stopped early, or the first job the stream did not store.
func (b *batch) publishAll(ctx context.Context, js jetstream.JetStream) error {
	var limiter *rate.Limiter
	if b.o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(b.o.Rate), max(1, int(b.o.Rate/100)))
	}
	acks := make(chan inflight, 4096)
	ackDone := make(chan error, 1)
	go func() { ackDone <- b.watchAcks(ctx, acks) }()
	subject := topology.JobsPrefix + b.o.Lane
	if b.o.Bulk {
		subject = topology.BulkPrefix + b.o.Lane
	}
	var pubErr error
	rctx, stopReading := context.WithCancel(ctx)
	jobs := b.lookahead(rctx)
	defer func() {
		stopReading()
		for range jobs { // the reader has stopped when it closes jobs
		}
	}()
	for pubErr == nil {
		c, ok := <-jobs
		if !ok {
			break
		}
		<-c.looked
		if c.stored != nil {
			// Stored as the job's own result (one subject per job):
			// written to Out as if it had just arrived.
			b.onResult(c.stored, "", time.Now())
			b.mu.Lock()
			b.s.Skipped++
			b.mu.Unlock()
			continue
		}
		if c.dead {
			b.mu.Lock()
			b.s.DeadLettered++
			b.mu.Unlock()
			continue
		}
		w := c.w
		h := xxhash.Sum64String(w.JobID)
		answered, err := b.reserve(ctx, h)
		if pubErr = err; pubErr != nil {
			break
		}
		if answered {
			continue
		}
		if limiter != nil {
			if pubErr = limiter.Wait(ctx); pubErr != nil {
				b.unpend(h)
				break
			}
			// publish→result starts at the publish, not before the
			// limiter's wait.
			b.stamp(h)
		}
		b.mu.Lock()
		b.digests[h] = c.digest
		b.mu.Unlock()
		data, _ := json.Marshal(w)
		msgID := job.MsgID(b.o.Lane, w.JobID)
		if c.corrected {
			// The stream may still hold the dead-lettered copy's id inside
			// its duplicate window: this content's own id is not dropped.
			msgID = job.ContentMsgID(b.o.Lane, w.JobID, c.digest)
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}}
		// Each job's span is a child of ctx's: a caller that passes no
		// span gets one trace per job.
		_, span := startProduce(ctx, msg)
		fut, err := js.PublishMsgAsync(msg, publishRetries...)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			span.End()
			b.unpend(h)
			pubErr = fmt.Errorf("publish job %s: %w", w.JobID, err)
			break
		}
		b.s.Published++
		acks <- inflight{fut: fut, h: h, id: w.JobID, span: span}
	}
	close(acks)
	if err := <-ackDone; err != nil && pubErr == nil {
		pubErr = fmt.Errorf("a job was not stored: %w", err)
	}
	return pubErr
}

// stamp restarts a pending job's clock.
func (b *batch) stamp(h uint64) {
	b.mu.Lock()
	if _, ok := b.pending[h]; ok {
		b.pending[h] = time.Now()
	}
	b.mu.Unlock()
}

// next reads the source's next job: ok is false at its end; a nil job is
// one to skip (invalid, answered or published already, or dead-lettered
// and the batch has no reply subject of its own to find its answer on).
// The candidate's dead says the job was dead-lettered before: it is
// looked up, not published; corrected, that it was dead-lettered as other
// content, and is published again.
func (b *batch) next() (c *candidate, ok bool) {
	v, err := b.o.Source.Next()
	if errors.Is(err, io.EOF) {
		return nil, false
	}
	b.s.Read++
	if err != nil {
		b.s.Invalid++
		if b.o.OnInvalid != nil {
			b.o.OnInvalid(err)
		}
		return nil, true
	}
	if v.JobID == "" {
		v.JobID = DeriveJobID(v)
	}
	if b.o.ReplySubject != "" {
		// A job has one reply subject: the run's replaces the job's own.
		v.ReplySubject = b.o.ReplySubject
	}
	h := xxhash.Sum64String(v.JobID)
	digest := digestOf(&v)
	content := xxhash.Sum64String(digest)
	b.mu.Lock()
	if first, ok := b.contents[h]; ok && first != content {
		// The same job_id twice in the source, for other content: the
		// second is never answered with the first's result.
		b.s.Conflicts = append(b.s.Conflicts, v.JobID)
		b.mu.Unlock()
		return nil, true
	} else if !ok {
		b.contents[h] = content
	}
	if b.mine != nil {
		// Before its lookup: a result stored after it is read by the
		// consumer and taken.
		b.mine[h] = struct{}{}
	}
	_, done := b.written[h]
	_, already := b.pending[h]
	letter, dead := b.dead[h]
	corrected := false
	if dead {
		// Dead-lettered as other content: the job was corrected since,
		// and is published again.
		corrected = letter.otherThan(&v)
		dead = !corrected
	}
	// With a reply subject of the run's, a dead-lettered job's answer, if
	// any, was read there; without one, only its lookup finds it.
	skipDead := dead && b.mine == nil
	switch {
	case done || already:
		b.s.Skipped++
	case skipDead:
		b.s.DeadLettered++
	}
	b.mu.Unlock()
	if done || already || skipDead {
		return nil, true
	}
	return &candidate{w: &v, dead: dead, corrected: corrected, digest: digest}, true
}

// catchUp waits until *read (guarded by mu) reaches n, the messages stored
// before the run began (so their jobs count as answered or dead-lettered),
// for at most catchUpFor (a message may expire meanwhile), or ctx ends.
func (b *batch) catchUp(ctx context.Context, read *uint64, n uint64) {
	deadline := time.Now().Add(catchUpFor)
	timer := time.AfterFunc(catchUpFor, b.wake)
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for *read < n && ctx.Err() == nil && time.Now().Before(deadline) {
		b.cond.Wait()
	}
}

// catchUpFor bounds the reading of earlier results and dead letters.
const catchUpFor = time.Minute

// reserve waits until fewer than MaxPending jobs are unanswered, then
// counts job h as pending, unless its result arrived meanwhile (an earlier
// run's, read while this job was looked up or waited here) or it is pending
// already.
func (b *batch) reserve(ctx context.Context, h uint64) (answered bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) >= b.o.MaxPending && ctx.Err() == nil {
		b.cond.Wait()
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, done := b.written[h]
	_, already := b.pending[h] // the same job twice in the source
	if done || already {
		b.s.Skipped++
		return true, nil
	}
	b.pending[h] = time.Now()
	return false, nil
}

// awaitResults waits for the pending jobs' results until the timeout.
func (b *batch) awaitResults(ctx context.Context) {
	deadline := time.Now().Add(b.o.Timeout)
	timer := time.AfterFunc(b.o.Timeout, b.wake)
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		b.cond.Wait()
	}
	b.s.Missing = len(b.pending)
}

// outcome flushes the results file and says how the run ended.
func (b *batch) outcome(ctx context.Context, pubErr error) error {
	b.mu.Lock()
	// The results consumer runs until Batch returns: from here on it
	// changes neither the summary the caller gets nor the output.
	b.closed = true
	ferr := b.out.Flush()
	b.mu.Unlock()
	b.s.Elapsed = time.Since(b.start)
	switch {
	case pubErr != nil:
		return pubErr
	case b.werr != nil:
		return fmt.Errorf("write results: %w", b.werr)
	case ferr != nil:
		return fmt.Errorf("write results: %w", ferr)
	case len(b.s.Conflicts) > 0:
		return fmt.Errorf("%w: %d jobs whose job_id was used before for other content (publish them under new job ids): %s",
			ErrConflict, len(b.s.Conflicts), strings.Join(b.s.Conflicts[:min(len(b.s.Conflicts), 5)], ", "))
	case b.s.Missing > 0:
		return fmt.Errorf("%w: %d of %d jobs got no result within %s%s", ErrNoResult, b.s.Missing, b.s.Published, b.o.Timeout, deadNote(b.s.DeadLetteredNow))
	case b.s.DeadLetteredNow > 0:
		return &unanswered{fmt.Sprintf("producer: %d of %d jobs were dead-lettered in this run without a result (publisher dlq list --ids says why)",
			b.s.DeadLetteredNow, b.s.Published)}
	}
	return ctx.Err()
}

func deadNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", and %d were dead-lettered without a result (publisher dlq list --ids says why)", n)
}

// unanswered is the batch's error when jobs were dead-lettered without a
// result but none waited out the timeout: ErrNoResult, in words that do not
// speak of a timeout.
type unanswered struct{ msg string }

func (e *unanswered) Error() string { return e.msg }
func (e *unanswered) Unwrap() error { return ErrNoResult }

// Percentile returns the q-quantile (0..1) of v, nearest rank; NaN when empty.
func Percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Write prints the summary as a table.
func (s *Summary) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "jobs read\t%d\n", s.Read)
	fmt.Fprintf(tw, "published\t%d\t(%d duplicates dropped by the stream)\n", s.Published, s.Duplicates)
	fmt.Fprintf(tw, "skipped (already answered)\t%d\n", s.Skipped)
	if s.DeadLettered > 0 {
		fmt.Fprintf(tw, "skipped (dead-lettered before)\t%d\t(publisher dlq list --ids says why; a job corrected in the file is published again)\n", s.DeadLettered)
	}
	if s.DeadLetteredNow > 0 {
		fmt.Fprintf(tw, "dead-lettered in this run\t%d\t(without a result: publisher dlq list --ids)\n", s.DeadLetteredNow)
	}
	if s.DeadLettersUnread != "" {
		fmt.Fprintf(tw, "dead letters not read\t%s\t(so a job dead-lettered before is not known as such, and is published)\n", s.DeadLettersUnread)
	}
	if len(s.Conflicts) > 0 {
		fmt.Fprintf(tw, "job_id reused for other content\t%d\t(never answered with the other job's result; publish under new job ids: %s)\n",
			len(s.Conflicts), strings.Join(s.Conflicts[:min(len(s.Conflicts), 5)], ", "))
	}
	if s.Invalid > 0 {
		fmt.Fprintf(tw, "unreadable input lines\t%d\n", s.Invalid)
	}
	fmt.Fprintf(tw, "results\t%d\n", s.Results)
	fmt.Fprintf(tw, "missing\t%d\n", s.Missing)
	section := func(title string, m map[string]int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			t := ""
			if i == 0 {
				t = title
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\n", t, k, m[k])
		}
	}
	section("status", s.ByStatus)
	section("fallback reason", s.ByReason)
	section("cache (per text)", s.CacheTiers)
	for _, l := range []struct {
		name string
		v    []float64
	}{{"worker latency ms", s.WorkerLatencyMS}, {"publish→result ms", s.EndToEndMS}} {
		// With nothing published, the latencies are earlier runs'.
		if len(l.v) > 0 && s.Published > 0 {
			fmt.Fprintf(tw, "%s\tp50 %.3f\tp95 %.3f\tp99 %.3f\n", l.name, Percentile(l.v, 0.5), Percentile(l.v, 0.95), Percentile(l.v, 0.99))
		}
	}
	if s.Published == 0 {
		fmt.Fprintf(tw, "elapsed\t%s\tnothing published this run\n", s.Elapsed.Round(time.Millisecond))
	} else {
		fmt.Fprintf(tw, "elapsed\t%s\t%.0f results/s\n", s.Elapsed.Round(time.Millisecond), float64(s.Results)/max(s.Elapsed.Seconds(), 1e-9))
	}
	_ = tw.Flush()
}
