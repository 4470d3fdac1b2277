// Package similarity computes the five-part pattern similarity of two
// semantic analyses (docs/scoring.md#pattern-similarity).
//
// An analysis is reduced once, when it is cached, to Features: five sorted
// sets of 64-bit hashes of lower-cased strings. Comparing two Features is then
// a merge of sorted integer slices, allocation-free, which is what lets a job
// whose analyses are cached be scored in about a microsecond.
package similarity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Component indexes the five similarity components.
type Component int

// The components, in the order results list them.
const (
	Concept Component = iota
	Theme
	Domain
	Structure
	Relationship
	numComponents
)

var componentNames = [numComponents]string{"concept", "theme", "domain", "structure", "relationship"}

// String returns the component's name as used in results and configuration.
func (c Component) String() string {
	if c < 0 || c >= numComponents {
		return fmt.Sprintf("Component(%d)", int(c))
	}
	return componentNames[c]
}

// Components holds one score in [0, 1] per component.
type Components [numComponents]float64

// Weights holds one weight per component; they must sum to 1 (±0.01).
type Weights [numComponents]float64

// DefaultWeights are the default component weights
// (docs/scoring.md#from-an-analysis-to-five-sets).
var DefaultWeights = Weights{0.30, 0.20, 0.20, 0.15, 0.15}

// ErrInvalidWeights is returned for weights that are negative, not finite,
// incomplete or do not sum to 1.
var ErrInvalidWeights = errors.New("similarity: invalid weights")

// Validate reports whether w can be used.
func (w Weights) Validate() error {
	sum := 0.0
	for i, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1 {
			return fmt.Errorf("%w: %s=%v out of [0, 1]", ErrInvalidWeights, Component(i), v)
		}
		sum += v
	}
	if math.Abs(sum-1) > 0.01 {
		return fmt.Errorf("%w: sum is %.4g, want 1 (±0.01)", ErrInvalidWeights, sum)
	}
	return nil
}

// ParseWeights parses "concept=0.3,theme=0.2,..." (every component named
// once) and validates the result.
func ParseWeights(s string) (Weights, error) {
	var w Weights
	var seen [numComponents]bool
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return w, fmt.Errorf("%w: %q is not name=value", ErrInvalidWeights, part)
		}
		idx := slices.Index(componentNames[:], strings.ToLower(strings.TrimSpace(name)))
		if idx < 0 {
			return w, fmt.Errorf("%w: unknown component %q", ErrInvalidWeights, name)
		}
		var f float64
		if _, err := fmt.Sscanf(strings.TrimSpace(val), "%g", &f); err != nil {
			return w, fmt.Errorf("%w: %s: %q is not a number", ErrInvalidWeights, name, val)
		}
		if seen[idx] {
			return w, fmt.Errorf("%w: %s given twice", ErrInvalidWeights, name)
		}
		seen[idx] = true
		w[idx] = f
	}
	for i, ok := range seen {
		if !ok {
			return w, fmt.Errorf("%w: %s missing", ErrInvalidWeights, Component(i))
		}
	}
	return w, w.Validate()
}

// String formats w the way ParseWeights reads it.
func (w Weights) String() string {
	var b strings.Builder
	for i, v := range w {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%g", Component(i), v)
	}
	return b.String()
}

// Features is the reduced form of one semantic analysis: for each component
// a sorted set of hashes of lower-cased strings. The zero value is five empty
// sets. Features are immutable once built and safe to share.
type Features struct {
	hashes []uint64
	// end[i] is the end of component i's run in hashes; component i spans
	// hashes[end[i-1]:end[i]].
	end [numComponents]uint32
}

// Builder collects the strings of each component and builds Features.
// The zero value is ready to use.
type Builder struct {
	sets [numComponents][]uint64
}

// Add adds s, lower-cased, to component c.
func (b *Builder) Add(c Component, s string) {
	b.sets[c] = append(b.sets[c], Hash(s))
}

// Hash is the hash under which a string enters a set: xxhash64 of the
// lower-cased string. It is stable across processes, so Features travel
// through Redis.
func Hash(s string) uint64 {
	return xxhash.Sum64String(strings.ToLower(s))
}

// Build returns the Features holding every string added so far.
func (b *Builder) Build() *Features {
	n := 0
	for i := range b.sets {
		slices.Sort(b.sets[i])
		b.sets[i] = slices.Compact(b.sets[i])
		n += len(b.sets[i])
	}
	f := &Features{hashes: make([]uint64, 0, n)}
	for i, s := range b.sets {
		f.hashes = append(f.hashes, s...)
		f.end[i] = uint32(len(f.hashes))
	}
	return f
}

func (f *Features) set(c Component) []uint64 {
	start := uint32(0)
	if c > 0 {
		start = f.end[c-1]
	}
	return f.hashes[start:f.end[c]]
}

// Len returns the size of component c's set.
func (f *Features) Len(c Component) int { return len(f.set(c)) }

// SizeBytes estimates the heap bytes f holds (struct and hash array).
func (f *Features) SizeBytes() int { return 48 + 8*cap(f.hashes) }

// Jaccard returns |A∩B| / |A∪B| of two sorted, duplicate-free sets, 1 when
// both are empty and 0 when exactly one is.
func Jaccard(a, b []uint64) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	inter := 0
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			inter++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

// Compare returns the component scores of a against b and the weighted
// pattern similarity. It does not allocate.
func Compare(a, b *Features, w *Weights) (Components, float64) {
	var c Components
	total := 0.0
	for i := range c {
		c[i] = Jaccard(a.set(Component(i)), b.set(Component(i)))
		total += w[i] * c[i]
	}
	// Rounding in the weighted sum may leave 1+ε when every component is 1.
	return c, min(max(total, 0), 1)
}

// encoding: version byte, five uvarint set sizes, then 8 bytes per hash.
const encodingVersion = 1

// ErrCorrupt is returned by UnmarshalBinary for bytes it did not write.
var ErrCorrupt = errors.New("similarity: corrupt features encoding")

// MarshalBinary encodes f compactly (about 8 bytes per set member).
func (f *Features) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, 1+5*binary.MaxVarintLen32+8*len(f.hashes))
	out = append(out, encodingVersion)
	prev := uint32(0)
	for _, e := range f.end {
		out = binary.AppendUvarint(out, uint64(e-prev))
		prev = e
	}
	for _, h := range f.hashes {
		out = binary.LittleEndian.AppendUint64(out, h)
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, checking every length
// and that each set is sorted and duplicate-free: a value read back from a
// shared cache is not trusted.
func (f *Features) UnmarshalBinary(data []byte) error {
	if len(data) < 1 || data[0] != encodingVersion {
		return fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	data = data[1:]
	var end [numComponents]uint32
	total := uint64(0)
	for i := range end {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > 1<<20 {
			return fmt.Errorf("%w: bad set size", ErrCorrupt)
		}
		data = data[k:]
		total += n
		end[i] = uint32(total)
	}
	if uint64(len(data)) != 8*total {
		return fmt.Errorf("%w: %d hash bytes for %d members", ErrCorrupt, len(data), total)
	}
	hashes := make([]uint64, total)
	for i := range hashes {
		hashes[i] = binary.LittleEndian.Uint64(data[8*i:])
	}
	start := uint32(0)
	for _, e := range end {
		s := hashes[start:e]
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				return fmt.Errorf("%w: set not sorted", ErrCorrupt)
			}
		}
		start = e
	}
	f.hashes, f.end = hashes, end
	return nil
}
