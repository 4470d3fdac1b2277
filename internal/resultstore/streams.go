package resultstore

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/pkg/job"
)

// streamTable knows which subjects a stream stores, so a reply subject is
// matched in memory: a new reply subject per job (the NATS request
// pattern) costs no API round trip. It is read again every 30 s; a stream
// created meanwhile still stores what a plain publish sends it, only
// without a PubAck to wait for.
type streamTable struct {
	mu      sync.RWMutex
	filters [][]string // every stream's subjects, split into tokens
}

func (t *streamTable) load(ctx context.Context, js jetstream.JetStream) error {
	var filters [][]string
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		for _, f := range s.CachedInfo().Config.Subjects {
			filters = append(filters, splitTokens(f))
		}
	}
	if err := names.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	t.filters = filters
	t.mu.Unlock()
	return nil
}

// covers reports whether a stream stores subject.
func (t *streamTable) covers(subject string) bool {
	if strings.HasPrefix(subject, job.ResultsPrefix) {
		return true
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, f := range t.filters {
		if matches(f, subject) {
			return true
		}
	}
	return false
}

// matches reports whether subject matches the filter's tokens, with NATS's
// wildcards: "*" one token, ">" one or more at the end.
func matches(filter []string, subject string) bool {
	for i, f := range filter {
		if subject == "" {
			return false
		}
		tok, rest, more := strings.Cut(subject, ".")
		switch f {
		case ">":
			return true
		case "*":
		default:
			if f != tok {
				return false
			}
		}
		if !more {
			return i == len(filter)-1
		}
		subject = rest
	}
	return false
}

func splitTokens(subject string) []string { return strings.Split(subject, ".") }
