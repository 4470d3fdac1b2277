package job

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"sync"
)

// Digest identifies what a job asks: the fields that decide its result,
// each written with its length before it, so that no two different jobs
// share the bytes hashed (SHA-256, of which 128 bits are kept). Metadata
// (correlation id, deadline, fallback policy) and where the answer goes
// (reply subject) may differ between two copies of one job: a resubmission
// waiting on a new inbox is the same job. The bytes are laid out in a
// pooled buffer and hashed at once: one allocation, the string.
func Digest(j *Job) string {
	bp := digestBufs.Get().(*[]byte)
	b := (*bp)[:0]
	field := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(j.TaskDescription)
	field(j.HistoricalPatternText)
	field(j.Language)
	field(j.Context)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(j.VectorSimilarity))
	if c := j.Characteristics; c != nil {
		b = append(b, 1)
		field(c.Complexity)
		field(c.FeatureLabel)
		field(c.TaskType)
	} else {
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*bp = b
		digestBufs.Put(bp)
	}
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

var digestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
