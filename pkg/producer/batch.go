package producer

import (
	"bufio"
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
	// ReplySubject receives this batch's results; it must lie under
	// scoring.results. so they are stored. Rerunning a file with the same
	// subject finds the results of earlier runs there.
	ReplySubject string
	Rate         float64       // jobs per second; 0 means unlimited
	MaxPending   int           // jobs published and not yet answered; 0 means 10000
	Timeout      time.Duration // wait for results after the last publish; 0 means 5 min
	Out          io.Writer     // results, one JSON object per line
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
	Results, Missing                              int
	ByStatus                                      map[string]int
	ByReason                                      map[string]int
	CacheTiers                                    map[string]int
	WorkerLatencyMS, EndToEndMS                   []float64
	Elapsed                                       time.Duration
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
// result stream into o.Out. It returns ErrNoResult (with the summary) when
// some job got no result before the timeout.
func (c *Client) Batch(ctx context.Context, o BatchOptions) (*Summary, error) {
	if o.MaxPending <= 0 {
		o.MaxPending = 10000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if !job.ValidLane(o.Lane) {
		return nil, fmt.Errorf("lane %q is not one token of [A-Za-z0-9_-]", o.Lane)
	}
	if !strings.HasPrefix(o.ReplySubject, topology.ResultsPrefix) || !job.ValidSubject(o.ReplySubject) {
		return nil, fmt.Errorf("reply subject %q must be a subject under %s", o.ReplySubject, topology.ResultsPrefix)
	}
	start := time.Now()
	s := &Summary{ByStatus: map[string]int{}, ByReason: map[string]int{}, CacheTiers: map[string]int{}}
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		written = map[uint64]struct{}{} // hashes of answered ids: 16 bytes a job, not a job
		pending = map[uint64]time.Time{}
		out     = bufio.NewWriterSize(o.Out, 256<<10)
		werr    error
	)
	for _, id := range o.Answered {
		written[xxhash.Sum64String(id)] = struct{}{}
	}
	onResult := func(data []byte, at time.Time) {
		var r resultView
		if json.Unmarshal(data, &r) != nil || r.JobID == "" {
			return
		}
		h := xxhash.Sum64String(r.JobID)
		mu.Lock()
		defer mu.Unlock()
		if _, dup := written[h]; dup {
			return
		}
		written[h] = struct{}{}
		if _, err := out.Write(append(data, '\n')); err != nil && werr == nil {
			werr = err
		}
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
		if t, ok := pending[h]; ok {
			s.EndToEndMS = append(s.EndToEndMS, float64(at.Sub(t).Microseconds())/1000)
			delete(pending, h)
		}
		if o.Progress != nil {
			o.Progress(s.Results)
		}
		cond.Broadcast()
	}

	cons, err := c.JS.OrderedConsumer(ctx, topology.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.ReplySubject}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { onResult(m.Data(), time.Now()) })
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer cc.Stop()

	// Waits below are woken by results, by the timeout, and by ctx.
	stop := context.AfterFunc(ctx, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
	defer stop()
	unpend := func(h uint64) {
		mu.Lock()
		delete(pending, h)
		cond.Broadcast()
		mu.Unlock()
	}
	var limiter *rate.Limiter
	if o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), max(1, int(o.Rate/100)))
	}
	type inflight struct {
		fut jetstream.PubAckFuture
		h   uint64
	}
	acks := make(chan inflight, 4096)
	ackDone := make(chan error, 1)
	go func() {
		var first error
		for f := range acks {
			select {
			case a := <-f.fut.Ok():
				if a.Duplicate {
					mu.Lock()
					s.Duplicates++
					mu.Unlock()
				}
			case err := <-f.fut.Err():
				if first == nil {
					first = err
				}
				unpend(f.h)
			}
		}
		ackDone <- first
	}()

	var pubErr error
	subject := topology.JobsPrefix + o.Lane
	if o.Bulk {
		subject = topology.BulkPrefix + o.Lane
	}
	for {
		w, err := o.Source.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		s.Read++
		if err != nil {
			s.Invalid++
			if o.OnInvalid != nil {
				o.OnInvalid(err)
			}
			continue
		}
		if w.JobID == "" {
			w.JobID = DeriveJobID(w)
		}
		w.ReplySubject = o.ReplySubject
		h := xxhash.Sum64String(w.JobID)
		mu.Lock()
		_, done := written[h]
		_, already := pending[h]
		if done || already {
			s.Skipped++
			mu.Unlock()
			continue
		}
		for len(pending) >= o.MaxPending && ctx.Err() == nil {
			cond.Wait()
		}
		if err := ctx.Err(); err != nil {
			mu.Unlock()
			pubErr = err
			break
		}
		pending[h] = time.Now()
		mu.Unlock()
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				unpend(h)
				pubErr = err
				break
			}
		}
		data, _ := json.Marshal(w)
		fut, err := c.JS.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{w.JobID}}})
		if err != nil {
			unpend(h)
			pubErr = fmt.Errorf("publish job %s: %w", w.JobID, err)
			break
		}
		s.Published++
		acks <- inflight{fut: fut, h: h}
	}
	close(acks)
	if err := <-ackDone; err != nil && pubErr == nil {
		pubErr = fmt.Errorf("a job was not stored: %w", err)
	}

	deadline := time.Now().Add(o.Timeout)
	timer := time.AfterFunc(o.Timeout, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
	defer timer.Stop()
	mu.Lock()
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		cond.Wait()
	}
	s.Missing = len(pending)
	ferr := out.Flush()
	mu.Unlock()
	s.Elapsed = time.Since(start)
	switch {
	case pubErr != nil:
		return s, pubErr
	case werr != nil:
		return s, fmt.Errorf("write results: %w", werr)
	case ferr != nil:
		return s, fmt.Errorf("write results: %w", ferr)
	case s.Missing > 0:
		return s, fmt.Errorf("%w: %d of %d jobs unanswered", ErrNoResult, s.Missing, s.Published)
	}
	return s, ctx.Err()
}

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
		if len(l.v) > 0 {
			fmt.Fprintf(tw, "%s\tp50 %.3f\tp95 %.3f\tp99 %.3f\n", l.name, Percentile(l.v, 0.5), Percentile(l.v, 0.95), Percentile(l.v, 0.99))
		}
	}
	fmt.Fprintf(tw, "elapsed\t%s\t%.0f results/s\n", s.Elapsed.Round(time.Millisecond), float64(s.Results)/max(s.Elapsed.Seconds(), 1e-9))
	_ = tw.Flush()
}
