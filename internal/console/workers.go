package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hybridscore/hybridscore/internal/server"
)

// Worker is one worker as the NATS service API shows it: its discovery
// answer and, when it answered in time, its status.
type Worker struct {
	ID      string // the service instance id
	Version string
	Status  *server.Status
	Err     string // why the status is missing
	// Gone is when a worker that answered lately was last heard of; zero
	// for one that answers now.
	Gone time.Time
}

// Name is the worker's WORKER_ID, or its service id before its status came.
func (w Worker) Name() string {
	if w.Status != nil && w.Status.WorkerID != "" {
		return w.Status.WorkerID
	}
	return w.ID
}

// goneFor is how long a worker that stopped answering is still listed,
// as gone: a worker stopped (or unreachable) would otherwise only vanish
// from the list, leaving a count one lower to notice.
const goneFor = 10 * time.Minute

// seen remembers the workers that answered in the last goneFor.
type seen struct {
	mu sync.Mutex
	m  map[string]Worker // by service id; Gone holds when it last answered
}

// with returns ws with the workers seen lately that are not in it, marked
// gone, and remembers those in it.
func (s *seen) with(ws []Worker, now time.Time) []Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Worker{}
	}
	here := map[string]bool{}
	for _, w := range ws {
		here[w.ID] = true
		here[w.Name()] = true // the same WORKER_ID restarted is not gone
		if w.Status != nil {  // one that answered its status, not one stopping
			last := w
			last.Gone = now
			s.m[w.ID] = last
		}
	}
	for id, w := range s.m {
		switch {
		case now.Sub(w.Gone) > goneFor:
			delete(s.m, id)
		case !here[id] && !here[w.Name()]:
			ws = append(ws, Worker{ID: w.ID, Version: w.Version, Status: w.Status, Gone: w.Gone})
		}
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].Gone.IsZero() != ws[j].Gone.IsZero() {
			return ws[i].Gone.IsZero()
		}
		return ws[i].Name() < ws[j].Name()
	})
	return ws
}

// discoveryWindow is how long a discovery request collects answers: every
// worker answers PING at once, so a quiet window of this length ends it.
const discoveryWindow = 250 * time.Millisecond

// Workers discovers every hybridscore worker (PING) and asks each for its
// status, in parallel.
func Workers(ctx context.Context, nc *nats.Conn) ([]Worker, error) {
	pings, err := discover(ctx, nc, "$SRV.PING."+server.ServiceName)
	if err != nil {
		return nil, err
	}
	ws := make([]Worker, 0, len(pings))
	seen := map[string]bool{}
	for _, b := range pings {
		var p micro.Ping
		if json.Unmarshal(b, &p) != nil || p.ID == "" || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		v := p.Metadata[server.MetaVersion]
		if v == "" {
			v = p.Version
		}
		ws = append(ws, Worker{ID: p.ID, Version: v})
	}
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func(w *Worker) {
			defer wg.Done()
			var st server.Status
			if err := call(ctx, nc, w.ID, server.EndpointStatus, &st); err != nil {
				w.Err = err.Error()
				if errors.Is(err, nats.ErrNoResponders) {
					// It answered discovery a moment ago: it is stopping.
					w.Err = "stopping: it no longer answers for its status"
				}
				return
			}
			w.Status = &st
		}(&ws[i])
	}
	wg.Wait()
	sort.Slice(ws, func(i, j int) bool { return ws[i].Name() < ws[j].Name() })
	return ws, nil
}

// discover publishes one request and collects the answers until none came
// for discoveryWindow.
func discover(ctx context.Context, nc *nats.Conn, subject string) ([][]byte, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("discover workers: %w", err)
	}
	var out [][]byte
	for {
		wctx, cancel := context.WithTimeout(ctx, discoveryWindow)
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, errors.Is(err, nats.ErrNoResponders):
			return out, nil
		case err != nil:
			return out, fmt.Errorf("discover workers: %w", err)
		}
		out = append(out, m.Data)
	}
}

// call sends a request to one worker's endpoint and decodes its answer
// into v; a service error (micro's Nats-Service-Error header) is an error.
func call(ctx context.Context, nc *nats.Conn, id, endpoint string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, server.EndpointSubject(id, endpoint), nil)
	if err != nil {
		return fmt.Errorf("worker %s %s: %w", id, endpoint, err)
	}
	if e := m.Header.Get(micro.ErrorHeader); e != "" {
		return fmt.Errorf("worker %s %s: %s", id, endpoint, e)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("worker %s %s: %w", id, endpoint, err)
	}
	return nil
}
