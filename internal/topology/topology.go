// Package topology declares hybridscore's JetStream streams and consumer
// (docs/contract.md#subjects-and-streams) and provisions whichever are
// missing, leaving existing ones exactly as their operator configured them.
package topology

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hybridscore/hybridscore/internal/config"
)

// Names of the contract.
const (
	JobsStream    = "SCORING_JOBS"
	ResultsStream = "SCORING_RESULTS"
	DLQStream     = "SCORING_DLQ"
	Consumer      = "hybrid-scorer"
	// BulkStream and BulkConsumer carry bulk jobs (batch rescoring): the
	// same jobs, results and dead letters, served after interactive ones
	// with a guaranteed share of each worker.
	BulkStream   = "SCORING_BULK"
	BulkConsumer = "hybrid-scorer-bulk"
	BulkPrefix   = "scoring.bulk."
	// LegacyClaimsBucket is the key-value bucket in which versions before
	// the per-job result subject recorded each answered job. This version
	// neither creates nor writes it; a worker started on a deployment that
	// has it reads its claims until the newest expires (package
	// resultstore).
	LegacyClaimsBucket = "SCORING_CLAIMS"

	JobsPrefix    = "scoring.jobs."
	ResultsPrefix = "scoring.results."
	DLQPrefix     = "scoring.dlq."
)

// Config sizes the topology. Zero values take the defaults of package
// config; -1 means unlimited where noted.
type Config struct {
	Replicas        int
	DuplicateWindow time.Duration
	ResultsMaxAge   time.Duration
	DLQMaxAge       time.Duration // 0 means 7 days
	AckWait         time.Duration
	MaxDeliver      int // -1 unlimited
	// MaxAckPending bounds unacknowledged jobs across all workers; 0 means
	// 20000. Delivery pauses silently when it is reached, so it is set on
	// purpose, well above workers × WORKER_PREFETCH.
	MaxAckPending int
	// Storage of the job stream; the zero value is file storage.
	Storage jetstream.StorageType
}

// Defaults returns c with zero values filled.
func (c Config) Defaults() Config {
	d := config.Defaults()
	if c.Replicas <= 0 {
		c.Replicas = d.StreamReplicas
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = d.DuplicateWindow
	}
	if c.ResultsMaxAge <= 0 {
		c.ResultsMaxAge = d.ResultsMaxAge
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = config.DLQMaxAge
	}
	if c.AckWait <= 0 {
		c.AckWait = d.AckWait
	}
	switch {
	case c.MaxDeliver == 0:
		c.MaxDeliver = d.MaxDeliver
	case c.MaxDeliver < 0:
		c.MaxDeliver = -1
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 20000
	}
	return c
}

// LegacyClaimsConfig returns the configuration earlier versions gave their
// claims bucket (for tests of an upgrade).
func (c Config) LegacyClaimsConfig() jetstream.KeyValueConfig {
	c = c.Defaults()
	return jetstream.KeyValueConfig{Bucket: LegacyClaimsBucket, Description: "hybridscore: job id → digest of the job whose result is stored",
		History: 1, TTL: c.ResultsMaxAge, Storage: jetstream.FileStorage, Replicas: c.Replicas}
}

// Streams returns the three stream configurations.
func (c Config) Streams() []jetstream.StreamConfig {
	c = c.Defaults()
	return []jetstream.StreamConfig{
		{Name: JobsStream, Subjects: []string{JobsPrefix + ">"}, Retention: jetstream.WorkQueuePolicy, Storage: c.Storage,
			Duplicates: c.DuplicateWindow, Replicas: c.Replicas, Description: "hybridscore jobs"},
		{Name: BulkStream, Subjects: []string{BulkPrefix + ">"}, Retention: jetstream.WorkQueuePolicy, Storage: c.Storage,
			Duplicates: c.DuplicateWindow, Replicas: c.Replicas, Description: "hybridscore bulk jobs"},
		{Name: ResultsStream, Subjects: []string{ResultsPrefix + ">"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: c.ResultsMaxAge, Duplicates: c.DuplicateWindow, Replicas: c.Replicas, Description: "hybridscore results"},
		{Name: DLQStream, Subjects: []string{DLQPrefix + ">"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: c.DLQMaxAge, Duplicates: c.DuplicateWindow, Replicas: c.Replicas, Description: "hybridscore dead letters"},
	}
}

// ConsumerConfig returns the shared durable pull consumer's configuration.
//
// It has no filter subject: the consumer takes its whole stream, which
// holds only job subjects anyway. A filter equal to the stream's subject
// (scoring.jobs.>, what earlier versions set) selects the same messages,
// but the server then matches every message against the wildcard on its
// way out, about 0.6 µs of its CPU a job (docs/operations.md#measuring-throughput).
func (c Config) ConsumerConfig() jetstream.ConsumerConfig {
	c = c.Defaults()
	return jetstream.ConsumerConfig{
		Durable: Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: c.AckWait,
		MaxDeliver: c.MaxDeliver, MaxAckPending: c.MaxAckPending,
		Replicas: c.Replicas, Description: "hybridscore workers",
	}
}

// BulkConsumerConfig returns the bulk class's consumer configuration: the
// interactive one's, on the bulk stream.
func (c Config) BulkConsumerConfig() jetstream.ConsumerConfig {
	cc := c.ConsumerConfig()
	cc.Durable, cc.Description = BulkConsumer, "hybridscore workers, bulk jobs"
	return cc
}

// Provision creates whatever stream or consumer is missing and returns the
// consumer's effective configuration (which the worker must honour, e.g. its
// AckWait and MaxDeliver, even when an operator set them).
func Provision(ctx context.Context, js jetstream.JetStream, c Config) (*jetstream.ConsumerConfig, error) {
	for _, sc := range c.Streams() {
		if _, err := js.Stream(ctx, sc.Name); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("topology: look up stream %s: %w", sc.Name, err)
		}
		if _, err := js.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("topology: create stream %s: %w", sc.Name, err)
		}
	}
	if _, err := ensureConsumer(ctx, js, BulkStream, c.BulkConsumerConfig()); err != nil {
		return nil, err
	}
	return ensureConsumer(ctx, js, JobsStream, c.ConsumerConfig())
}

// Drift lists how the existing streams differ from c in the settings c
// shapes (duplicate window, maximum age, replicas): Provision creates a
// missing stream but never changes one, so a changed setting takes effect
// only when an operator edits the stream. One line per difference, each
// naming the stream, what it keeps and what c asks for.
func Drift(ctx context.Context, js jetstream.JetStream, c Config) ([]string, error) {
	var diffs []string
	for _, want := range c.Streams() {
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return diffs, fmt.Errorf("topology: look up stream %s: %w", want.Name, err)
		}
		have := s.CachedInfo().Config
		if have.Duplicates != want.Duplicates {
			diffs = append(diffs, fmt.Sprintf("stream %s keeps its duplicate window of %s, not DUPLICATE_WINDOW's %s", want.Name, have.Duplicates, want.Duplicates))
		}
		if want.MaxAge > 0 && have.MaxAge != want.MaxAge {
			diffs = append(diffs, fmt.Sprintf("stream %s keeps its maximum age of %s, not %s", want.Name, have.MaxAge, want.MaxAge))
		}
		if have.Replicas != want.Replicas && want.Replicas > 0 {
			diffs = append(diffs, fmt.Sprintf("stream %s keeps %d replicas, not STREAM_REPLICAS's %d", want.Name, have.Replicas, want.Replicas))
		}
	}
	return diffs, nil
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cc jetstream.ConsumerConfig) (*jetstream.ConsumerConfig, error) {
	cons, err := js.Consumer(ctx, stream, cc.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, stream, cc)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = js.Consumer(ctx, stream, cc.Durable)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("topology: consumer %s on %s: %w", cc.Durable, stream, err)
	}
	cfg := cons.CachedInfo().Config
	return &cfg, nil
}

// Lane returns the lane of a job subject ("scoring.jobs.<lane>" or
// "scoring.bulk.<lane>"), or "default" when the subject has no single lane
// token. A token outside the lanes' [A-Za-z0-9_-]+ (which the publisher
// refuses) is kept as it is: results of jobs published there are stored,
// and looked for, under that token.
func Lane(subject string) string {
	lane, ok := strings.CutPrefix(subject, JobsPrefix)
	if !ok {
		lane, ok = strings.CutPrefix(subject, BulkPrefix)
	}
	if !ok || lane == "" || strings.Contains(lane, ".") {
		return "default"
	}
	return lane
}
