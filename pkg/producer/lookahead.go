package producer

import (
	"context"
	"encoding/json"
	"math"

	"github.com/hybridscore/hybridscore/pkg/job"
)

// A rerun looks every job up before publishing it. One lookup at a time
// would hold the batch to a round trip per job; the reader runs ahead of
// the publisher instead, with this many lookups in flight and this many
// jobs read ahead, and hands the jobs over in the source's order.
const (
	lookupsInFlight = 32
	readAhead       = 512
)

// candidate is a job read ahead of its publish.
type candidate struct {
	w *job.Wire
	// stored is the job's own stored result (job.ResultSubject), if it has
	// one; it is set before looked is closed.
	stored []byte
	looked chan struct{}
	dead   bool // dead-lettered before: never published
	// corrected: dead-lettered before as other content, published again.
	corrected bool
	digest    string // digestOf(w)
}

// lookahead reads the source (next) ahead of the publisher and looks each
// job's own result up; it closes the channel at the source's end or when
// ctx ends, and only then has it stopped using the batch's counters.
func (b *batch) lookahead(ctx context.Context) <-chan *candidate {
	out := make(chan *candidate, readAhead)
	slots := make(chan struct{}, lookupsInFlight)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			c, ok := b.next()
			if !ok {
				return
			}
			if c == nil {
				continue // invalid, answered, pending or dead-lettered
			}
			c.looked = make(chan struct{})
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-slots; close(c.looked) }()
				// Not found, or no answer: the job is published; the
				// stream's and the worker's deduplication are behind. A
				// result stored for other content (or a rejection) is not
				// this job's answer: the job is published, and the worker
				// tells the conflict.
				if m, err := b.results.GetLastMsgForSubject(ctx, job.ResultSubject(b.o.Lane, c.w.JobID)); err == nil && m.Header.Get(headerDigest) == c.digest {
					c.stored = m.Data
				}
			}()
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// headerDigest is the header of a stored result that holds its job's
// digest (job.Digest).
const headerDigest = "Hybridscore-Digest"

// digestOf is the digest the worker gives the job: of its decoded form, with
// the defaults applied; "" when it does not decode (the worker rejects it).
// Sizes are not checked here: a worker's limits (MAX_TEXT_BYTES,
// MAX_JOB_BYTES) may be above the defaults, and a job over them is
// answered as rejected, which carries no digest.
func digestOf(w *job.Wire) string {
	data, err := json.Marshal(w)
	if err != nil {
		return ""
	}
	j, _, err := job.Decode(data, job.Limits{MaxTextBytes: math.MaxInt32, MaxJobBytes: math.MaxInt32})
	if err != nil {
		return ""
	}
	return job.Digest(j)
}
