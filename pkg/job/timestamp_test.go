package job

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestTimestamp checks the once-a-second formatting against the
// standard library's, for fractions with and without trailing zeros, none,
// seconds that follow one another and years it hands back to Format.
func TestTimestamp(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	base := time.Date(2026, 12, 6, 23, 59, 58, 0, time.FixedZone("x", 3600))
	cases := []time.Time{base, base.Add(time.Nanosecond), base.Add(120 * time.Millisecond), base.Add(time.Second),
		base.Add(2*time.Second + 999999999), time.Date(999, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 500, time.UTC), time.Unix(0, 0), time.Now()}
	for range 20000 {
		cases = append(cases, base.Add(time.Duration(r.Int64N(int64(72*time.Hour)))))
	}
	for _, c := range cases {
		if got, want := Timestamp(c), c.UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("Timestamp(%v) = %q, want %q", c, got, want)
		}
	}
}

func BenchmarkTimestamp(b *testing.B) {
	now := time.Now()
	b.Run("format", func(b *testing.B) {
		for i := range b.N {
			_ = now.Add(time.Duration(i)).UTC().Format(time.RFC3339Nano)
		}
	})
	b.Run("fast", func(b *testing.B) {
		for i := range b.N {
			_ = Timestamp(now.Add(time.Duration(i)))
		}
	})
}
