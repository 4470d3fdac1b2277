package topology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultWatchInterval is how often a Watch looks at the streams.
const DefaultWatchInterval = 5 * time.Second

// Watch keeps an eye on the topology's streams while a worker runs: an
// operator, a restore or a lost volume can remove one (the results stream,
// say) without touching the consumers, and the worker would then retry
// every result forever while looking healthy. Each look asks for every
// stream of Config.Streams; with Provision on, whatever is missing is
// provisioned again at once. Missing says what the last look found
// missing (and could not bring back), for /health.
type Watch struct {
	JS        jetstream.JetStream
	Config    Config
	Provision bool
	// Interval between looks; 0 means DefaultWatchInterval.
	Interval time.Duration
	// Changed, when set, is told each time what is missing changes (nil:
	// nothing), with the provisioning error if one failed.
	Changed func(missing []string, err error)
	// Provisioned, when set, is told the streams a look found missing and
	// created again at once. What is missing then stays empty, so Changed
	// hears nothing; yet a stream that vanished took what it held with it
	// (the results stored so far, with SCORING_RESULTS), which an operator
	// must learn of.
	Provisioned func(streams []string)

	mu      sync.Mutex
	missing []string
}

// Run looks at the streams every Interval until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	t := time.NewTicker(cmpOr(w.Interval, DefaultWatchInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, cmpOr(w.Interval, DefaultWatchInterval))
		_, _ = w.Check(lctx)
		cancel()
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Check looks once, provisions what is missing when Provision is on, and
// returns what is still missing. A stream that could not be looked up (NATS
// unreachable) leaves the last answer as it was.
func (w *Watch) Check(ctx context.Context) ([]string, error) {
	missing, err := w.look(ctx)
	if err != nil {
		return w.Missing(), err
	}
	var perr error
	var created []string
	if len(missing) > 0 && w.Provision {
		if _, perr = Provision(ctx, w.JS, w.Config); perr == nil {
			found := missing
			if missing, err = w.look(ctx); err != nil {
				return w.Missing(), err
			}
			for _, name := range found {
				if !slices.Contains(missing, name) {
					created = append(created, name)
				}
			}
		}
	}
	if len(created) > 0 && w.Provisioned != nil {
		w.Provisioned(created)
	}
	w.mu.Lock()
	changed := !slices.Equal(missing, w.missing)
	w.missing = missing
	w.mu.Unlock()
	if changed && w.Changed != nil {
		w.Changed(missing, perr)
	}
	return missing, perr
}

func (w *Watch) look(ctx context.Context) ([]string, error) {
	var missing []string
	for _, sc := range w.Config.Streams() {
		_, err := w.JS.Stream(ctx, sc.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			missing = append(missing, sc.Name)
		case err != nil:
			return nil, fmt.Errorf("topology: look up stream %s: %w", sc.Name, err)
		}
	}
	return missing, nil
}

// Missing returns the streams the last look found missing.
func (w *Watch) Missing() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.missing)
}
