package resultstore

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Versions before the per-job result subject recorded each answered job
// in a key-value bucket of claims (key: the job id in base64url, value:
// the job's digest) beside a result on scoring.results.<lane>. A worker of
// this version started on such a deployment reads those claims before
// storing, until the newest of them has expired (the bucket's TTL, which
// was RESULTS_MAX_AGE): a job answered by the earlier version is then a
// repeat or a conflict, never a second result. After that the lookup costs
// nothing: it is not made.

// LegacyClaimKey is the key of a job's claim in an earlier version's bucket.
func LegacyClaimKey(jobID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(jobID))
}

// LegacyActive reports whether an earlier version's claims are still read
// before storing: only then does a Request need its LegacyDigest.
func (s *Store) LegacyActive() bool {
	until := s.legacyUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// LegacyUntil is when the earlier version's claims stop mattering; zero
// when there are none.
func (s *Store) LegacyUntil() time.Time {
	if u := s.legacyUntil.Load(); u != 0 {
		return time.Unix(0, u)
	}
	return time.Time{}
}

// watchLegacy reads the claims bucket's state: its newest claim plus its
// TTL is when the lookups end.
func (s *Store) watchLegacy(ctx context.Context) {
	st, err := s.js.Stream(ctx, "KV_"+s.cfg.LegacyClaims)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s.legacyUntil.Store(0)
		return
	case err != nil:
		// Unknown: keep what was known (a store refused for a repeat is
		// still caught by the per-job subject).
		s.log.Warn("reading the earlier version's claims bucket", zap.Error(err))
		return
	}
	info := st.CachedInfo()
	until := int64(0)
	switch {
	case info.State.Msgs == 0:
	case info.Config.MaxAge <= 0:
		until = math.MaxInt64
	default:
		until = info.State.LastTime.Add(info.Config.MaxAge).UnixNano()
	}
	if was := s.legacyUntil.Swap(until); was != until && until > time.Now().UnixNano() {
		s.log.Info("an earlier version's claims are read before storing until they expire",
			zap.String("bucket", s.cfg.LegacyClaims), zap.Time("until", time.Unix(0, until)))
	}
}

func (s *Store) lookupLegacy(op *Op) {
	op.stage = stageLegacy
	op.out = nats.Msg{Subject: s.legacyGet + LegacyClaimKey(op.JobID)}
	s.request(op)
}
