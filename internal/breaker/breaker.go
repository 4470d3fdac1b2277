// Package breaker guards calls to a remote service with one circuit breaker
// per process (sony/gobreaker/v2), adding what gobreaker lacks: a manual
// reset, the state numbering of the langextract_circuit_breaker_state gauge,
// and a failure policy that is told apart from the caller's own
// cancellation.
package breaker

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// State is the breaker state, numbered as the
// langextract_circuit_breaker_state gauge reports it (docs/contract.md#metrics).
type State int

// The gauge's numbering.
const (
	Closed   State = 0
	Open     State = 1
	HalfOpen State = 2
)

// String returns closed, open or half_open.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// ErrOpen is returned, wrapped with the caller's sentinel if one is set in
// Config.OpenError, when the breaker refuses a call.
var ErrOpen = errors.New("breaker: open")

// Config configures a Breaker. Zero values take the defaults noted.
type Config struct {
	Name      string
	Threshold uint32        // consecutive counted failures that open it; 0 means 5
	Timeout   time.Duration // open time before a half-open probe; 0 means 60 s
	// Counts reports whether err counts as a failure; nil counts every
	// non-nil error. Errors it does not count neither trip nor reset the
	// breaker.
	Counts func(err error) bool
	// OnStateChange, if set, is called on every transition (and on Reset).
	OnStateChange func(from, to State)
	// OpenError is wrapped together with ErrOpen when the breaker refuses a
	// call, so callers can match their own taxonomy with errors.Is.
	OpenError error
}

// Breaker is a circuit breaker over calls returning T. Safe for concurrent use.
type Breaker[T any] struct {
	cfg Config
	cb  atomic.Pointer[gobreaker.CircuitBreaker[T]]
}

// New returns a closed breaker.
func New[T any](cfg Config) *Breaker[T] {
	if cfg.Threshold == 0 {
		cfg.Threshold = 5
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Counts == nil {
		cfg.Counts = func(err error) bool { return err != nil }
	}
	b := &Breaker[T]{cfg: cfg}
	b.cb.Store(b.newCB())
	return b
}

func (b *Breaker[T]) newCB() *gobreaker.CircuitBreaker[T] {
	var cb *gobreaker.CircuitBreaker[T]
	cb = gobreaker.NewCircuitBreaker[T](gobreaker.Settings{
		Name:        b.cfg.Name,
		MaxRequests: 1,
		Timeout:     b.cfg.Timeout,
		// Interval 0: counts are cleared only by a success or a state
		// change, so slow, spread-out failures still add up while nothing
		// succeeds in between.
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.cfg.Threshold },
		IsExcluded: func(err error) bool {
			return err != nil && !b.cfg.Counts(err)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			// A call still in flight on a breaker replaced by Reset must
			// not report the old breaker's transitions as current.
			if b.cfg.OnStateChange != nil && b.cb.Load() == cb {
				b.cfg.OnStateChange(convert(from), convert(to))
			}
		},
	})
	return cb
}

func convert(s gobreaker.State) State {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}

// Do runs fn unless the breaker is open. A refusal returns an error wrapping
// ErrOpen (and Config.OpenError). fn must bound its own duration: the breaker
// has no timeout.
func (b *Breaker[T]) Do(fn func() (T, error)) (T, error) {
	v, err := b.cb.Load().Execute(fn)
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		// Too many requests means a half-open probe is already out: for the
		// caller that is the same as open.
		if b.cfg.OpenError != nil {
			return v, errors.Join(b.cfg.OpenError, ErrOpen)
		}
		return v, ErrOpen
	}
	return v, err
}

// State returns the current state.
func (b *Breaker[T]) State() State { return convert(b.cb.Load().State()) }

// ConsecutiveFailures returns the counted failures since the last success or
// transition.
func (b *Breaker[T]) ConsecutiveFailures() uint32 { return b.cb.Load().Counts().ConsecutiveFailures }

// Reset closes the breaker at once and clears its counts (the operators'
// emergency reset, docs/operations.md#circuit-breaker-stuck-open). Calls in
// flight on the old breaker finish against it.
func (b *Breaker[T]) Reset() {
	from := b.State()
	b.cb.Store(b.newCB())
	if b.cfg.OnStateChange != nil && from != Closed {
		b.cfg.OnStateChange(from, Closed)
	}
}
