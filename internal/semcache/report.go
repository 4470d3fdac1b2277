package semcache

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hybridscore/hybridscore/internal/analysis"
)

// AgeBounds are the upper bounds of the age buckets of a Report, in
// seconds; the last bucket is unbounded.
var AgeBounds = []float64{10, 60, 300, 900, 1800, 3600, 7200, 21600, 86400}

// ReuseBounds are the upper bounds of the reuse buckets: how many times an
// entry was hit in memory before it left the cache.
var ReuseBounds = []float64{0, 1, 4, 9, 99}

// lifeStats follows entries from store to removal. It lives under c.mu.
type lifeStats struct {
	ageAtHit      [10]uint64 // len(AgeBounds)+1
	ageAtEviction [10]uint64
	reuse         [6]uint64 // len(ReuseBounds)+1, of entries that left
	evicted       uint64    // pushed out by size while live
	evictedUnused uint64
	expired       uint64 // found or pushed out past their TTL
	expiredUnused uint64
	hitsLate      uint64 // hits in the last quarter of the TTL
}

func bucket(bounds []float64, v float64) int {
	i, _ := slices.BinarySearch(bounds, v)
	return i
}

// hit records a tier-1 hit on an entry of age (and TTL ttl), nanoseconds.
func (l *lifeStats) hit(age, ttl int64) {
	l.ageAtHit[bucket(AgeBounds, float64(age)/1e9)]++
	if age >= ttl-ttl/4 {
		l.hitsLate++
	}
}

// ended records e leaving tier 1 at now: expired (found past its TTL),
// or pushed out by size, which counts as expired when it was past its TTL.
func (l *lifeStats) ended(e *entry, now int64, expired bool) {
	l.reuse[bucket(ReuseBounds, float64(e.hits))]++
	if expired || now >= e.expires {
		l.expired++
		if e.hits == 0 {
			l.expiredUnused++
		}
		return
	}
	l.evicted++
	if e.hits == 0 {
		l.evictedUnused++
	}
	l.ageAtEviction[bucket(AgeBounds, float64(now-e.created)/1e9)]++
}

// Bucket is one bar of a distribution: the count of values up to LE (the
// upper bound, +Inf for the last).
type Bucket struct {
	LE    float64
	Count uint64
}

type jsonBucket struct {
	LE    json.RawMessage `json:"le"` // a number, or "+Inf" as Prometheus writes it
	Count uint64          `json:"count"`
}

// MarshalJSON writes {"le": 60, "count": 3}, with "+Inf" for the last bound
// (JSON has no infinity).
func (b Bucket) MarshalJSON() ([]byte, error) {
	le := []byte(`"+Inf"`)
	if !math.IsInf(b.LE, 1) {
		le = strconv.AppendFloat(nil, b.LE, 'g', -1, 64)
	}
	return json.Marshal(jsonBucket{LE: le, Count: b.Count})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *Bucket) UnmarshalJSON(data []byte) error {
	var j jsonBucket
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	b.Count, b.LE = j.Count, math.Inf(1)
	if string(j.LE) != `"+Inf"` {
		return json.Unmarshal(j.LE, &b.LE)
	}
	return nil
}

// Report is what the cache knows of its own effectiveness since it
// started: the figures behind choosing its size and TTL.
type Report struct {
	Metrics
	// Lookups by where they were answered, as shares of all lookups.
	TierRates struct {
		Memory float64 `json:"memory"`
		Redis  float64 `json:"redis"`
		Shared float64 `json:"shared"`
		Miss   float64 `json:"miss"`
	} `json:"tier_rates"`
	AgeAtHitSeconds      []Bucket `json:"age_at_hit_seconds"`
	AgeAtEvictionSeconds []Bucket `json:"age_at_eviction_seconds"`
	// Reuse is how many memory hits entries had when they left.
	Reuse         []Bucket `json:"reuse"`
	Evicted       uint64   `json:"evicted"` // live entries pushed out by size
	EvictedUnused uint64   `json:"evicted_unused"`
	Expired       uint64   `json:"expired"`
	ExpiredUnused uint64   `json:"expired_unused"`
	HitsLate      uint64   `json:"hits_in_last_quarter_of_ttl"`
	// Recommendation follows from the figures (see Report's doc in the
	// operations guide): raise or lower the TTL or the size, or keep them.
	Recommendation        []string `json:"recommendation"`
	RecommendedTTLSeconds float64  `json:"recommended_ttl_seconds"`
	RecommendedMaxSize    int      `json:"recommended_max_size"`
}

// Report returns the cache's effectiveness report.
func (c *Cache) Report() Report {
	r := Report{Metrics: c.Metrics()}
	now := c.cfg.Now().UnixNano()
	c.mu.Lock()
	l := c.life
	// Entries past their TTL that nobody asked for again are still held
	// until a lookup or the LRU finds them: count them as expired now.
	for e := c.lru.next; e != &c.lru; e = e.next {
		if now >= e.expires {
			l.expired++
			if e.hits == 0 {
				l.expiredUnused++
			}
		}
	}
	c.mu.Unlock()
	if r.TotalRequests > 0 {
		t := float64(r.TotalRequests)
		r.TierRates.Memory, r.TierRates.Redis = float64(r.MemoryHits)/t, float64(r.RedisHits)/t
		r.TierRates.Shared, r.TierRates.Miss = float64(r.SharedHits)/t, float64(r.Misses)/t
	}
	r.AgeAtHitSeconds = buckets(AgeBounds, l.ageAtHit[:])
	r.AgeAtEvictionSeconds = buckets(AgeBounds, l.ageAtEviction[:])
	r.Reuse = buckets(ReuseBounds, l.reuse[:])
	r.Evicted, r.EvictedUnused, r.Expired, r.ExpiredUnused, r.HitsLate = l.evicted, l.evictedUnused, l.expired, l.expiredUnused, l.hitsLate
	r.recommend()
	return r
}

func buckets(bounds []float64, counts []uint64) []Bucket {
	b := make([]Bucket, len(counts))
	for i := range counts {
		b[i] = Bucket{LE: math.Inf(1), Count: counts[i]}
		if i < len(bounds) {
			b[i].LE = bounds[i]
		}
	}
	return b
}

// The rules, from the operations guide: evictions mean the cache is too
// small; hits late in an entry's life and entries expiring while still in
// use mean the TTL cuts reuse short; entries that expire unused mean the
// TTL (and memory) could be smaller. Below minEvidence events nothing is
// concluded.
const minEvidence = 100

func (r *Report) recommend() {
	r.RecommendedTTLSeconds, r.RecommendedMaxSize = r.TTLSeconds, r.MaxSize
	memHits := float64(r.MemoryHits)
	left := r.Evicted + r.Expired
	if r.TotalRequests < minEvidence {
		r.Recommendation = []string{fmt.Sprintf("keep: only %d lookups so far; look again after more traffic", r.TotalRequests)}
		return
	}
	if r.Evicted >= minEvidence/10 && float64(r.Evicted) > 0.05*float64(r.Misses) {
		r.RecommendedMaxSize = int(math.Ceil(float64(r.MaxSize) * 1.5))
		r.Recommendation = append(r.Recommendation, fmt.Sprintf(
			"raise SEMANTIC_CACHE_MAX_SIZE to %d: %d live entries were evicted for room (%d of them never reused), %.0f%% of misses",
			r.RecommendedMaxSize, r.Evicted, r.EvictedUnused, 100*float64(r.Evicted)/math.Max(1, float64(r.Misses))))
	}
	usedAtExpiry := r.Expired - r.ExpiredUnused
	switch {
	case memHits > 0 && float64(r.HitsLate) >= 0.1*memHits || r.Expired >= minEvidence/10 && float64(usedAtExpiry) >= 0.5*float64(r.Expired):
		r.RecommendedTTLSeconds = 2 * r.TTLSeconds
		r.Recommendation = append(r.Recommendation, fmt.Sprintf(
			"raise SEMANTIC_CACHE_TTL_SECONDS to %.0f: %.0f%% of memory hits came in the last quarter of the TTL and %d of %d expired entries had been reused, so entries expire while still in use",
			r.RecommendedTTLSeconds, 100*float64(r.HitsLate)/math.Max(1, memHits), usedAtExpiry, r.Expired))
	case left >= minEvidence && float64(r.ExpiredUnused+r.EvictedUnused) >= 0.8*float64(left):
		// Lower the TTL to the age that covers 95% of hits, never below a
		// minute: what is reused is reused early.
		ttl := math.Max(60, quantileBound(r.AgeAtHitSeconds, 0.95))
		if ttl < r.TTLSeconds {
			r.RecommendedTTLSeconds = ttl
			r.Recommendation = append(r.Recommendation, fmt.Sprintf(
				"lower SEMANTIC_CACHE_TTL_SECONDS to %.0f: %d of %d entries left the cache never reused, and 95%% of hits come within %.0f s of the analysis",
				ttl, r.ExpiredUnused+r.EvictedUnused, left, ttl))
		}
	}
	if len(r.Recommendation) == 0 {
		r.Recommendation = []string{"keep the size and TTL: entries are reused within their TTL and not evicted for room"}
	}
}

// quantileBound returns the upper bound of the bucket holding quantile q.
func quantileBound(b []Bucket, q float64) float64 {
	var total uint64
	for _, x := range b {
		total += x.Count
	}
	if total == 0 {
		return 0
	}
	var run uint64
	for _, x := range b {
		run += x.Count
		if float64(run) >= q*float64(total) {
			return x.LE
		}
	}
	return math.Inf(1)
}

// WriteText writes the report as tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "size\t%d of %d entries, %d bytes\n", r.CurrentSize, r.MaxSize, r.MemoryBytes)
	fmt.Fprintf(tw, "TTL\t%s\n", time.Duration(r.TTLSeconds*float64(time.Second)))
	fmt.Fprintf(tw, "lookups\t%d, hit rate %.1f%%\n", r.TotalRequests, 100*r.HitRate)
	fmt.Fprintf(tw, "by tier\tmemory %.1f%%  redis %.1f%%  shared %.1f%%  miss %.1f%%\n",
		100*r.TierRates.Memory, 100*r.TierRates.Redis, 100*r.TierRates.Shared, 100*r.TierRates.Miss)
	fmt.Fprintf(tw, "left the cache\tevicted for room %d (%d never reused), expired %d (%d never reused)\n",
		r.Evicted, r.EvictedUnused, r.Expired, r.ExpiredUnused)
	fmt.Fprintf(tw, "late hits\t%d in the last quarter of the TTL\n", r.HitsLate)
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "age up to\tat hit\tat eviction\t")
	for i := range r.AgeAtHitSeconds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", ageLabel(r.AgeAtHitSeconds[i].LE), r.AgeAtHitSeconds[i].Count, r.AgeAtEvictionSeconds[i].Count)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "reused (hits)\tentries that left\t")
	lo := 0.0
	for _, b := range r.Reuse {
		label := fmt.Sprintf("%.0f–%.0f", lo, b.LE)
		switch {
		case math.IsInf(b.LE, 1):
			label = fmt.Sprintf("%.0f+", lo)
		case lo == b.LE:
			label = fmt.Sprintf("%.0f", b.LE)
		}
		fmt.Fprintf(tw, "%s\t%d\t\n", label, b.Count)
		lo = b.LE + 1
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, line := range r.Recommendation {
		fmt.Fprintln(w, "recommendation:", line)
	}
	return nil
}

func ageLabel(le float64) string {
	switch {
	case math.IsInf(le, 1):
		return "longer"
	case le >= 3600 && math.Mod(le, 3600) == 0:
		return fmt.Sprintf("%gh", le/3600)
	case le >= 60 && math.Mod(le, 60) == 0:
		return fmt.Sprintf("%gm", le/60)
	}
	return fmt.Sprintf("%gs", le)
}

// Export returns the queries of the live tier-1 entries, most recently used
// first: a warm file for another cache (SEMANTIC_CACHE_WARM_FILE, or POST
// /admin/cache/warm), so a restored or new worker starts warm.
func (c *Cache) Export() []analysis.Query {
	now := c.cfg.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	qs := make([]analysis.Query, 0, len(c.items))
	for e := c.lru.next; e != &c.lru; e = e.next {
		if now < e.expires {
			qs = append(qs, e.q)
		}
	}
	return qs
}
