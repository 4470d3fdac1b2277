package similarity_test

import (
	"errors"
	"math"
	"testing"

	"github.com/hybridscore/hybridscore/internal/similarity"
)

func features(sets [5][]string) *similarity.Features {
	var b similarity.Builder
	for c, s := range sets {
		for _, v := range s {
			b.Add(similarity.Component(c), v)
		}
	}
	return b.Build()
}

func TestJaccardComponents(t *testing.T) {
	a := features([5][]string{{"OAuth2", "token", "Token", "jwt"}, {}, {"technology"}, {"THEME"}, {"uses"}})
	b := features([5][]string{{"oauth2", "user", "TOKEN"}, {}, {}, {"theme", "topic"}, {"uses"}})
	c, total := similarity.Compare(a, b, &similarity.DefaultWeights)
	want := similarity.Components{2.0 / 4.0, 1, 0, 0.5, 1}
	for i := range c {
		if math.Abs(c[i]-want[i]) > 1e-12 {
			t.Errorf("%s = %v, want %v", similarity.Component(i), c[i], want[i])
		}
	}
	wantTotal := 0.3*0.5 + 0.2*1 + 0.2*0 + 0.15*0.5 + 0.15*1
	if math.Abs(total-wantTotal) > 1e-12 {
		t.Errorf("total = %v, want %v", total, wantTotal)
	}
	if a.Len(similarity.Concept) != 3 {
		t.Errorf("case-folded duplicates kept: %d concepts", a.Len(similarity.Concept))
	}
}

func TestParseWeights(t *testing.T) {
	w, err := similarity.ParseWeights("concept=0.3,theme=0.2,domain=0.2,structure=0.15,relationship=0.15")
	if err != nil || w != similarity.DefaultWeights {
		t.Fatalf("ParseWeights = %v, %v", w, err)
	}
	if back, err := similarity.ParseWeights(w.String()); err != nil || back != w {
		t.Fatalf("round trip: %v %v", back, err)
	}
	for _, bad := range []string{
		"concept=0.5,theme=0.2,domain=0.2,structure=0.15,relationship=0.15", // sums to 1.2
		"concept=0.3,theme=0.2,domain=0.2,structure=0.15",                   // missing
		"concept=0.3,theme=0.2,domain=0.2,structure=0.15,colour=0.15",       // unknown
		"concept=x,theme=0.2,domain=0.2,structure=0.15,relationship=0.15",
		"concept=-0.1,theme=0.4,domain=0.2,structure=0.25,relationship=0.25",
		"concept=0.3,concept=0.3,domain=0.2,structure=0.1,relationship=0.1",
	} {
		if _, err := similarity.ParseWeights(bad); !errors.Is(err, similarity.ErrInvalidWeights) {
			t.Errorf("ParseWeights(%q) = %v, want ErrInvalidWeights", bad, err)
		}
	}
}

func TestBinaryRoundTripAndCorruption(t *testing.T) {
	f := features([5][]string{{"a", "b", "c"}, {"x y"}, {}, {"LIST"}, {"uses", "extends"}})
	b, _ := f.MarshalBinary()
	var g similarity.Features
	if err := g.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if _, s := similarity.Compare(f, &g, &similarity.DefaultWeights); s != 1 {
		t.Fatalf("decoded features differ: similarity %v", s)
	}
	for _, bad := range [][]byte{nil, {}, {9}, b[:len(b)-1], append(append([]byte{}, b...), 0), {1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}} {
		if err := g.UnmarshalBinary(bad); !errors.Is(err, similarity.ErrCorrupt) {
			t.Errorf("UnmarshalBinary(%v) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func FuzzFeaturesDecode(f *testing.F) {
	good, _ := features([5][]string{{"a", "b"}, {"t"}, {}, {"LIST"}, {"uses"}}).MarshalBinary()
	f.Add(good)
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, data []byte) {
		var g similarity.Features
		if g.UnmarshalBinary(data) != nil {
			return
		}
		ref := features([5][]string{{"a"}, {}, {}, {"LIST"}, {}})
		c, s := similarity.Compare(&g, ref, &similarity.DefaultWeights)
		if !(s >= 0 && s <= 1) {
			t.Fatalf("similarity %v out of range", s)
		}
		for _, v := range c {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("component %v out of range", v)
			}
		}
	})
}

func BenchmarkCompare(b *testing.B) {
	x := features([5][]string{{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}, {"a b", "c d", "e f"}, {"technology"}, {"TOPIC", "THEME"}, {"uses"}})
	y := features([5][]string{{"a", "c", "e", "g", "x", "y", "z"}, {"a b", "q r"}, {"technology", "security"}, {"TOPIC"}, {"uses", "extends"}})
	b.ReportAllocs()
	for b.Loop() {
		similarity.Compare(x, y, &similarity.DefaultWeights)
	}
}
