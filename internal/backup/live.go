package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLive: a stream Restore would replace is in use (a consumer with a
// client pulling or bound, deliveries or acknowledgements, messages stored
// or removed while it watched). Nothing was changed.
var ErrLive = errors.New("backup: stream in use")

// ErrRolledBack: a restore failed part way and the streams it had replaced
// were put back as they were before it started.
var ErrRolledBack = errors.New("backup: restore failed; the replaced streams were put back")

// DefaultLiveWindow is how long Restore watches the streams it would
// replace for activity: longer than a worker's pull request lasts (1 s), so
// a live worker always has one waiting within it.
const DefaultLiveWindow = 2 * time.Second

// activity is what one look at a stream and its consumers shows.
type activity struct {
	lastSeq, msgs uint64
	consumers     map[string]consumerActivity
}

type consumerActivity struct {
	waiting          int
	bound            bool
	delivered, acked uint64
}

func look(ctx context.Context, js jetstream.JetStream, name string) (activity, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return activity{}, fmt.Errorf("backup: stream %s: %w", name, err)
	}
	st := s.CachedInfo().State
	a := activity{lastSeq: st.LastSeq, msgs: st.Msgs, consumers: map[string]consumerActivity{}}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		a.consumers[ci.Name] = consumerActivity{waiting: ci.NumWaiting, bound: ci.PushBound, delivered: ci.Delivered.Stream,
			acked: ci.AckFloor.Stream}
	}
	if err := lister.Err(); err != nil {
		return activity{}, fmt.Errorf("backup: consumers of %s: %w", name, err)
	}
	return a, nil
}

// checkIdle looks at each of the streams twice, window apart, and returns
// ErrLive naming every sign of a client still using one: a pull request
// waiting or a push consumer bound at the second look, or, between the
// looks, messages stored or removed, or a consumer delivering or
// acknowledging. Restore calls it before it changes anything: a worker or
// a producer writing into a stream being replaced would leave it neither
// the backup's nor its own.
func checkIdle(ctx context.Context, js jetstream.JetStream, names []string, window time.Duration) error {
	if len(names) == 0 {
		return nil
	}
	first := map[string]activity{}
	for _, n := range names {
		a, err := look(ctx, js, n)
		if err != nil {
			return err
		}
		first[n] = a
	}
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return ctx.Err()
	}
	var signs []string
	for _, n := range names {
		b, err := look(ctx, js, n)
		if err != nil {
			return err
		}
		a := first[n]
		if b.lastSeq != a.lastSeq || b.msgs != a.msgs {
			signs = append(signs, fmt.Sprintf("%s: %d messages stored, %d removed in %s (a publisher, or a consumer acknowledging)",
				n, b.lastSeq-a.lastSeq, int64(a.msgs)-int64(b.msgs)+int64(b.lastSeq-a.lastSeq), window))
		}
		for c, cb := range b.consumers {
			ca := a.consumers[c]
			switch {
			case cb.waiting > 0:
				signs = append(signs, fmt.Sprintf("%s: consumer %s has %d pull requests waiting", n, c, cb.waiting))
			case cb.bound:
				signs = append(signs, fmt.Sprintf("%s: push consumer %s is bound", n, c))
			case cb.delivered != ca.delivered || cb.acked != ca.acked:
				signs = append(signs, fmt.Sprintf("%s: consumer %s delivered or acknowledged messages in %s", n, c, window))
			}
		}
	}
	if len(signs) > 0 {
		return fmt.Errorf("%w: %s; stop the workers and producers, then restore again (nothing was changed)", ErrLive, strings.Join(signs, "; "))
	}
	return nil
}
