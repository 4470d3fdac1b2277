package job

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// jsonFloat is how encoding/json writes v.
func jsonFloat(t *testing.T, v float64) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAppendFloat compares appendFloat with encoding/json on the values
// results carry (multiples of 1e-12, microseconds in milliseconds) and on
// any others, around every boundary of its fast path.
func TestAppendFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(v float64) {
		t.Helper()
		if got, want := string(appendFloat(nil, v)), jsonFloat(t, v); got != want {
			t.Fatalf("appendFloat(%v) = %s, encoding/json writes %s", v, got, want)
		}
	}
	for _, v := range []float64{0, 1, -1, 0.5, 1e-6, 1e-6 - 1e-12, 1.5e-6, 9.99999e-7, 1e-7, 5e-7, 1e-12, 4096, 4095.999999999999, 4096 - 1e-12,
		0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 0.78375, 0.7837500000000001, 1e21, 1e20, 123456789, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		check(v)
		check(-v)
	}
	n := 2_000_000
	if testing.Short() {
		n = 200_000
	}
	for range n {
		check(math.Round(r.Float64()*1e12) / 1e12)                      // a tidied score
		check(float64(r.Int64N(10_000_000)) / 1000)                     // a latency
		check(float64(r.Int64N(4_200_000_000_000_000)) / 1e12)          // any multiple of 1e-12 around the fast path's end
		check(math.Round(r.Float64()*1e6) / 1e12)                       // below 1e-6
		check(math.Float64frombits(r.Uint64() & (math.MaxUint64 >> 2))) // anything
		x := r.Float64()
		check(x)
		check(math.Round(x*1e9) / 1e9)
	}
}

func BenchmarkAppendFloat(b *testing.B) {
	vs := []float64{0.798, 0.85, 0.72, 0.6, 0.4, 0.68295, 0.333333333333, 1, 0.5, 0.123, 0.412345678901, 0, 0.2}
	buf := make([]byte, 0, 512)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			buf = buf[:0]
			for _, v := range vs {
				buf = appendFloat(buf, v)
			}
		}
	})
	b.Run("strconv", func(b *testing.B) {
		for b.Loop() {
			buf = buf[:0]
			for _, v := range vs {
				buf = strconv.AppendFloat(buf, v, 'f', -1, 64)
			}
		}
	})
}
