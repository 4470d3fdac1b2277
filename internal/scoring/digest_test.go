package scoring

import (
	"testing"

	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/pkg/job"
)

func TestDigestFieldsAreLengthPrefixed(t *testing.T) {
	base := job.Job{JobID: "j", TaskDescription: "a\x00", HistoricalPatternText: "b", VectorSimilarity: 0.5, Language: "en", Context: "pattern_matching"}
	shifted := base
	shifted.TaskDescription, shifted.HistoricalPatternText = "a", "\x00b"
	if job.Digest(&base) == job.Digest(&shifted) {
		t.Fatal("a NUL moved from one field to the next leaves the digest unchanged")
	}
	// The earlier digest could not tell them apart: why it is only used
	// against that version's claims.
	if legacyDigest(&base) != legacyDigest(&shifted) {
		t.Fatal("the legacy digest changed: claims of the earlier version would no longer match")
	}
	for _, other := range []func(j *job.Job){
		func(j *job.Job) { j.Language = "de" },
		func(j *job.Job) { j.Context = "x" },
		func(j *job.Job) { j.VectorSimilarity = 0.6 },
		func(j *job.Job) { j.Characteristics = &combiner.Characteristics{} },
		func(j *job.Job) { j.Characteristics = &combiner.Characteristics{Complexity: "complex"} },
		func(j *job.Job) { j.TaskDescription, j.Language = "a\x00e", "n" },
	} {
		j := base
		other(&j)
		if job.Digest(&j) == job.Digest(&base) {
			t.Errorf("%+v digests like %+v", j, base)
		}
	}
	// Where the answer goes and the job's metadata are not its content.
	same := base
	same.ReplySubject, same.CorrelationID, same.OnFallback = "_INBOX.x", "c", job.FallbackRetry
	if job.Digest(&same) != job.Digest(&base) {
		t.Error("reply subject or metadata changed the digest")
	}
}
