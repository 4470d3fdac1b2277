package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// Delivery is what a Handler sees of one delivery of a job message. Data
// and Header belong to the message: a Handler must not keep them after it
// returns.
type Delivery struct {
	Subject string
	Data    []byte
	Header  nats.Header
	Lane    string
	Class   Class
	Attempt int    // 1 on the first delivery
	Seq     uint64 // the jobs stream's sequence; 0 when unknown
	// Last reports that the server will not deliver the job again.
	Last bool
	// Received is when this process got the message.
	Received time.Time
	// MayBlock is false on the pump's CPU pool: a Handler that would have
	// to wait (on langextract, Redis) answers NeedsIO instead, and is called
	// again with MayBlock true on a goroutine that may wait.
	MayBlock bool
}

// Disposition is what becomes of a delivery.
type Disposition uint8

// Dispositions.
const (
	// Publish stores Result (once per JobID and Digest, whatever the delay
	// of a redelivery; a repeat is answered again), sends it to Subject,
	// then acks.
	Publish Disposition = iota + 1
	// Retry naks with Delay: the job is tried again later (on_fallback
	// retry). It spends a delivery.
	Retry
	// Reject dead-letters the job with Reason, publishes Result (when not
	// nil) and terminates it: an invalid job is never redelivered.
	Reject
	// Fail is a bug (a panic): naked with backoff and, on the last
	// delivery, dead-lettered with reason internal.
	Fail
	// Requeue naks at once without blame: the job was not finished (the
	// worker is shutting down) and another worker should take it now.
	Requeue
	// NeedsIO asks to be called again with Delivery.MayBlock set.
	NeedsIO
)

// String names the disposition.
func (d Disposition) String() string {
	switch d {
	case Publish:
		return "publish"
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	case Fail:
		return "fail"
	case Requeue:
		return "requeue"
	case NeedsIO:
		return "needs_io"
	}
	return "unknown"
}

// Reply is a Handler's verdict on one delivery.
type Reply struct {
	Disposition Disposition
	// JobID identifies the job (with its lane): its result is stored on
	// job.ResultSubject(lane, JobID).
	JobID string
	// Digest identifies the job's content: the same JobID with another
	// Digest is a conflict, dead-lettered as job_id_conflict.
	Digest string
	// LegacyDigest is the digest earlier versions gave the same job, to
	// compare with their claims.
	LegacyDigest string
	// Subject is the job's reply subject, which receives a copy of Result;
	// empty: none.
	Subject string
	// Result is the encoded result. The pump owns it once returned; Release
	// (when set) is called when the pump no longer needs it.
	Result  []byte
	Release func([]byte)
	// Status labels the outcome in metrics and logs (scored, degraded, …).
	Status string
	// Delay of a Retry.
	Delay time.Duration
	// Reason and Message of a Reject or Fail (dead-letter headers).
	Reason, Message string
	// CorrelationID and FallbackReason are logged with the outcome.
	CorrelationID, FallbackReason string
}

// Handler turns one delivery into a Reply. It must be safe for concurrent
// use and must not ack, nak or terminate anything: the pump does, from the
// Reply.
type Handler interface {
	Handle(ctx context.Context, d *Delivery) Reply
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, d *Delivery) Reply

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, d *Delivery) Reply { return f(ctx, d) }

// Dead-letter reasons beyond the rejected jobs' error codes.
const (
	ReasonMaxDeliveries = "max_deliveries"
	ReasonConflict      = "job_id_conflict"
	ReasonInternal      = "internal"
)
