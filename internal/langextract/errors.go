package langextract

import (
	"context"
	"errors"
)

// The failure taxonomy. Every error the client returns for
// a failed analysis wraps exactly one of these (or the caller's context
// error), and FallbackReason maps it to the result's fallback_reason.
var (
	// ErrTimeout: a request did not answer within the timeout, after retries.
	ErrTimeout = errors.New("langextract: timeout")
	// ErrUnavailable: connection refused, DNS failure, or 503 after retries.
	ErrUnavailable = errors.New("langextract: unavailable")
	// ErrRateLimited: the service answered 429.
	ErrRateLimited = errors.New("langextract: rate limited")
	// ErrValidation: a 200 whose body is not a valid analysis.
	ErrValidation = errors.New("langextract: invalid response")
	// ErrCircuitOpen: the circuit breaker refused the call.
	ErrCircuitOpen = errors.New("langextract: circuit breaker open")
	// ErrRequest: the request itself was refused — a 4xx other than 408
	// and 429 (a proxy's 414 for a long query string, a 400), or a request
	// longer than the client's URL limit, which is then not sent. Another
	// text may well succeed, so it never counts toward the breaker.
	ErrRequest = errors.New("langextract: request refused")
	// ErrUnknown: any other failure (5xx statuses other than 503).
	ErrUnknown = errors.New("langextract: request failed")
)

// Fallback reasons, as they appear in results and metric labels.
const (
	ReasonTimeout        = "timeout"
	ReasonUnavailable    = "unavailable"
	ReasonValidation     = "validation_error"
	ReasonCircuitBreaker = "circuit_breaker"
	ReasonRateLimited    = "rate_limited"
	ReasonUnknown        = "unknown"
)

// FallbackReason names the fallback_reason for err; "" for nil.
func FallbackReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrCircuitOpen):
		return ReasonCircuitBreaker
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, ErrUnavailable):
		return ReasonUnavailable
	case errors.Is(err, ErrRateLimited):
		return ReasonRateLimited
	case errors.Is(err, ErrValidation), errors.Is(err, ErrRequest):
		return ReasonValidation
	}
	return ReasonUnknown
}

// CountsAsFailure reports whether err should count toward opening a circuit
// breaker: every failure of the service except an invalid body, a rate
// limit or a refused request. Cancellation by the caller is not the
// service's failure.
func CountsAsFailure(err error) bool {
	if err == nil || errors.Is(err, ErrValidation) || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrRequest) {
		return false
	}
	// The caller's own cancellation or deadline (shutdown, a job's deadline)
	// says nothing about the service; the client's per-request timeout is
	// reported as ErrTimeout instead, which does count.
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
