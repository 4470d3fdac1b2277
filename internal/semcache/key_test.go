package semcache

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/hybridscore/hybridscore/internal/analysis"
)

// streamedKeyOf is KeyOf as first written: each field and its length
// written to a streaming digest in turn. Keys in Redis were made by it, so
// KeyOf must give the same.
func streamedKeyOf(q analysis.Query) Key {
	var k Key
	var d xxhash.Digest
	var n [8]byte
	for i, seed := range [2]uint64{0, keySeed} {
		d.ResetWithSeed(seed)
		for _, f := range [3]string{q.Language, q.Context, q.Text} {
			binary.LittleEndian.PutUint64(n[:], uint64(len(f)))
			_, _ = d.Write(n[:])
			_, _ = d.WriteString(f)
		}
		k[i] = d.Sum64()
	}
	return k
}

func TestKeyOfMatchesStreamedKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	str := func(max int) string {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	qs := []analysis.Query{{}, {Text: "x"}, {Language: "en\x00x", Context: "y"}, {Language: "en", Context: "x\x00y"},
		{Text: strings.Repeat("long text ", 200)}, {Language: "en", Text: strings.Repeat("é", keyStackBytes)}}
	for range 20000 {
		qs = append(qs, analysis.Query{Language: str(8), Context: str(40), Text: str(600)})
	}
	for _, q := range qs {
		if got, want := KeyOf(q), streamedKeyOf(q); got != want {
			t.Fatalf("KeyOf(%q) = %v, the streamed digest gives %v", q, got, want)
		}
	}
	if KeyOf(qs[2]) == KeyOf(qs[3]) {
		t.Fatal("fields moved across a NUL give the same key")
	}
}

func BenchmarkKeyOf(b *testing.B) {
	q := analysis.Query{Language: "en", Text: "Implement OAuth2 authentication with JWT tokens for the public API"}
	b.ReportAllocs()
	for b.Loop() {
		KeyOf(q)
	}
}
