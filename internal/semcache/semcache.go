// Package semcache caches semantic features in two tiers: an in-process LRU
// with TTL, then Redis shared by every worker. It also coalesces work:
// concurrent lookups of one uncached text in a process make one load, and
// across processes a short Redis lease lets one worker load while the others
// wait for its answer. Redis is only ever an accelerator: when it is down,
// slow or answers garbage, lookups carry on in memory while the cache
// reconnects in the background.
package semcache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

// Status says where a lookup's answer came from.
type Status uint8

// Statuses, as named in results.
const (
	NotLooked Status = iota // no lookup was made
	Miss                    // this lookup loaded it (called the analyzer)
	Memory                  // tier 1
	Redis                   // tier 2
	Shared                  // waited on another caller's in-flight load
)

var statusNames = [...]string{"", "miss", "memory", "redis", "shared"}

// String returns miss, memory, redis or shared ("" for NotLooked).
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Key identifies an analysis: a 128-bit hash of language, context and text.
type Key [2]uint64

// KeyOf returns the key of q: language, context and text, each written
// after its length, so no two different queries hash the same bytes (a
// language "en\x00x" with context "y" is not language "en" with context
// "x\x00y"). Versions that joined the fields with NUL wrote other keys:
// after an upgrade Redis is cold once.
func KeyOf(q analysis.Query) Key {
	n := 24 + len(q.Language) + len(q.Context) + len(q.Text)
	var stack [keyStackBytes]byte
	var b []byte
	if n <= len(stack) {
		b = stack[:0]
	} else {
		b = make([]byte, 0, n)
	}
	// One pass over the laid-out bytes: a streaming digest fed field by
	// field hashes the same bytes, and gave the keys already in Redis.
	for _, f := range [3]string{q.Language, q.Context, q.Text} {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	var d xxhash.Digest
	d.ResetWithSeed(keySeed)
	_, _ = d.Write(b)
	return Key{xxhash.Sum64(b), d.Sum64()}
}

// keySeed seeds the second half of a Key.
const keySeed = 0x9e3779b97f4a7c15

// keyStackBytes bounds the fields KeyOf lays out on the stack.
const keyStackBytes = 512

// String returns the key as 32 hex digits.
func (k Key) String() string { return fmt.Sprintf("%016x%016x", k[0], k[1]) }

// Loader produces the features of a query on a miss. The cache knows nothing
// of what is behind it (langextract behind its breaker, or the built-in
// analyzer); the worker wires that in.
type Loader interface {
	Load(ctx context.Context, q analysis.Query) (*similarity.Features, error)
}

// LoaderFunc is a function that is a Loader.
type LoaderFunc func(ctx context.Context, q analysis.Query) (*similarity.Features, error)

// Load calls f.
func (f LoaderFunc) Load(ctx context.Context, q analysis.Query) (*similarity.Features, error) {
	return f(ctx, q)
}

// Config configures a Cache. Zero values take the defaults noted.
type Config struct {
	MaxSize int           // tier-1 entries; 0 means 1000
	TTL     time.Duration // both tiers; 0 means 1 h
	// Redis is tier 2; nil keeps the cache in memory. Build it with
	// ContextTimeoutEnabled so a slow Redis cannot stall a lookup.
	Redis        redis.UniversalClient
	KeyPrefix    string        // Redis key prefix; "" means "hybridscore:sem:"
	RedisTimeout time.Duration // per Redis command; 0 means 250 ms
	// LeaseTTL is how long a cross-process load lease lives without
	// renewal; a dead holder is replaced after at most this long. 0 means 3 s.
	LeaseTTL time.Duration
	// WaitTimeout bounds waiting on another process's lease (the request
	// timeout); after it the waiter loads itself. 0 means 30 s.
	WaitTimeout time.Duration
	// LoadTimeout bounds one load, which runs detached from the caller so
	// that one caller giving up does not fail the others. 0 means 60 s.
	LoadTimeout time.Duration
	// ReconnectInterval is the pause between Redis probes. Redis is probed
	// while up too, so an idle worker notices an outage; 0 means 1 s.
	ReconnectInterval time.Duration
	// OnRedisState is called when Redis is found down, with the error
	// that showed it, or back up, with a nil error.
	OnRedisState func(up bool, cause error)
	// Now is the clock for TTLs; nil means time.Now.
	Now func() time.Time
}

// Metrics are the cache's counters as GET /admin/cache reports them
// (docs/contract.md#http-endpoints), plus per-tier counts.
type Metrics struct {
	HitRate       float64 `json:"hit_rate"`
	Hits          uint64  `json:"hits"`
	Misses        uint64  `json:"misses"`
	Evictions     uint64  `json:"evictions"`
	TotalRequests uint64  `json:"total_requests"`
	CurrentSize   int     `json:"current_size"`
	MaxSize       int     `json:"max_size"`
	TTLSeconds    float64 `json:"ttl_seconds"`
	MemoryBytes   int64   `json:"memory_bytes"`
	MemoryHits    uint64  `json:"memory_hits"`
	RedisHits     uint64  `json:"redis_hits"`
	SharedHits    uint64  `json:"shared_hits"`
	Expirations   uint64  `json:"expirations"`
	RedisEnabled  bool    `json:"redis_enabled"`
	RedisUp       bool    `json:"redis_up"`
}

type entry struct {
	key        Key
	f          *similarity.Features
	q          analysis.Query // kept for Export: the texts to warm another cache with
	created    int64          // unix nanoseconds
	expires    int64          // unix nanoseconds
	hits       uint32         // tier-1 hits since stored
	size       int64
	prev, next *entry
}

// entryOverhead approximates what an entry costs beyond its features: the
// entry struct and its share of the map.
const entryOverhead = 64 + 48

type redisClient struct {
	redis.UniversalClient
	owned bool
}

func (c *Cache) rdb() redis.UniversalClient { return c.client.Load().UniversalClient }

type call struct {
	done   chan struct{}
	f      *similarity.Features
	status Status
	err    error
}

// Cache is the two-tier semantic cache. Safe for concurrent use.
type Cache struct {
	cfg    Config
	loader Loader
	owner  string

	mu    sync.Mutex
	items map[Key]*entry
	lru   entry // sentinel: lru.next is most recent
	bytes int64
	calls map[Key]*call
	life  lifeStats // under mu

	hits, misses, evictions, expirations atomic.Uint64
	memHits, redisHits, sharedHits       atomic.Uint64

	redisUp atomic.Bool
	// confirming is set while a timed-out command is being checked by a
	// ping, so that a burst of timeouts starts one check, not one each.
	confirming atomic.Bool
	// client is the Redis client in use: cfg.Redis, or a fresh one built
	// from its options after an outage (owned, closed by the cache).
	client atomic.Pointer[redisClient]

	bgCtx  context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a cache that calls load on misses. With Redis configured it
// pings Redis once within ctx; if Redis is down it starts in memory and
// reconnects in the background.
func New(ctx context.Context, cfg Config, load Loader) (*Cache, error) {
	if load == nil {
		return nil, errors.New("semcache: nil loader")
	}
	if cfg.MaxSize < 0 || cfg.TTL < 0 {
		return nil, errors.New("semcache: negative size or TTL")
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 1000
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "hybridscore:sem:"
	}
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = 250 * time.Millisecond
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 30 * time.Second
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 60 * time.Second
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	c := &Cache{cfg: cfg, loader: load, owner: hex.EncodeToString(id[:]), items: map[Key]*entry{}, calls: map[Key]*call{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	c.bgCtx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if cfg.Redis != nil {
		c.client.Store(&redisClient{UniversalClient: cfg.Redis})
		pctx, cancel := context.WithTimeout(ctx, max(cfg.RedisTimeout, time.Second))
		err := cfg.Redis.Ping(pctx).Err()
		cancel()
		c.redisUp.Store(err == nil)
		if err != nil && cfg.OnRedisState != nil {
			cfg.OnRedisState(false, err)
		}
		c.wg.Add(1)
		go c.monitor()
	}
	return c, nil
}

// Close stops background work. The cache still answers from memory.
func (c *Cache) Close() {
	c.cancel()
	c.wg.Wait()
	if rc := c.client.Load(); rc != nil && rc.owned {
		_ = rc.Close()
	}
}

// RedisEnabled reports whether a second tier is configured.
func (c *Cache) RedisEnabled() bool { return c.cfg.Redis != nil }

// RedisUp reports whether the second tier is in use now.
func (c *Cache) RedisUp() bool { return c.redisUp.Load() }

// Get returns the features of q, from tier 1, tier 2, another caller's
// in-flight load, or a load of its own, and says which. A Redis failure is
// never an error here; a load failure is returned as the loader gave it.
func (c *Cache) Get(ctx context.Context, q analysis.Query) (*similarity.Features, Status, error) {
	k := KeyOf(q)
	if f := c.lookup(k); f != nil {
		c.hits.Add(1)
		c.memHits.Add(1)
		return f, Memory, nil
	}
	return c.fill(ctx, k, q, true)
}

// CachedPair returns the tier-1 features of both a and b, counting a hit
// for each, or nil for both and counts nothing when either is missing (the
// caller then uses Get, which counts). One lock and one clock reading serve
// both texts: this is the path of every job whose texts are in memory.
func (c *Cache) CachedPair(a, b analysis.Query) (fa, fb *similarity.Features) {
	ka, kb := KeyOf(a), KeyOf(b)
	now := c.cfg.Now().UnixNano()
	c.mu.Lock()
	ea, eb := c.live(ka, now), c.live(kb, now)
	if ea == nil || eb == nil {
		c.mu.Unlock()
		return nil, nil
	}
	c.touch(ea, now)
	c.touch(eb, now)
	fa, fb = ea.f, eb.f
	c.mu.Unlock()
	c.hits.Add(2)
	c.memHits.Add(2)
	return fa, fb
}

// Cached returns the tier-1 features of q without waiting or loading, and
// counts a hit when it finds them; nil means Get must be used.
func (c *Cache) Cached(q analysis.Query) *similarity.Features {
	f := c.lookup(KeyOf(q))
	if f != nil {
		c.hits.Add(1)
		c.memHits.Add(1)
	}
	return f
}

// lookup returns the tier-1 entry for k, or nil, and counts a hit in the
// entry's life.
func (c *Cache) lookup(k Key) *similarity.Features {
	now := c.cfg.Now().UnixNano()
	c.mu.Lock()
	e := c.live(k, now)
	if e == nil {
		c.mu.Unlock()
		return nil
	}
	c.touch(e, now)
	f := e.f
	c.mu.Unlock()
	return f
}

// live returns the unexpired entry for k, or nil; an expired one is
// removed (under c.mu).
func (c *Cache) live(k Key, now int64) *entry {
	e := c.items[k]
	if e == nil {
		return nil
	}
	if now >= e.expires {
		c.life.ended(e, now, true)
		c.remove(e)
		c.expirations.Add(1)
		return nil
	}
	return e
}

// touch counts a hit in e's life and makes it the most recently used
// (under c.mu).
func (c *Cache) touch(e *entry, now int64) {
	e.hits++
	c.life.hit(now-e.created, e.expires-e.created)
	if c.lru.next != e {
		unlink(e)
		c.pushFront(e)
	}
}

func unlink(e *entry) { e.prev.next, e.next.prev = e.next, e.prev }

func (c *Cache) pushFront(e *entry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

func (c *Cache) remove(e *entry) {
	unlink(e)
	delete(c.items, e.key)
	c.bytes -= e.size
}

// store puts f in tier 1, evicting the least recently used beyond MaxSize.
func (c *Cache) store(k Key, q analysis.Query, f *similarity.Features) {
	now := c.cfg.Now()
	e := &entry{key: k, f: f, q: q, created: now.UnixNano(), expires: now.Add(c.cfg.TTL).UnixNano(),
		size: int64(entryOverhead + f.SizeBytes() + len(q.Text) + len(q.Language) + len(q.Context))}
	evicted := 0
	c.mu.Lock()
	if old := c.items[k]; old != nil {
		c.remove(old)
	}
	c.items[k] = e
	c.pushFront(e)
	c.bytes += e.size
	for len(c.items) > c.cfg.MaxSize {
		old := c.lru.prev
		c.life.ended(old, e.created, false)
		c.remove(old)
		evicted++
	}
	c.mu.Unlock()
	if evicted > 0 {
		c.evictions.Add(uint64(evicted))
	}
}

// fill coalesces concurrent misses of one key into one load. Unless
// counted, it leaves the lookup and hit counters and the entries' lives
// as they were: a warm-up is not traffic.
func (c *Cache) fill(ctx context.Context, k Key, q analysis.Query, counted bool) (*similarity.Features, Status, error) {
	c.mu.Lock()
	// A load may have finished between the caller's tier-1 miss and now:
	// it stores before it retires its call, so look again under the lock.
	if e, now := c.items[k], c.cfg.Now().UnixNano(); e != nil && now < e.expires {
		f := e.f
		if !counted {
			c.mu.Unlock()
			return f, Memory, nil
		}
		e.hits++
		c.life.hit(now-e.created, e.expires-e.created)
		c.mu.Unlock()
		c.hits.Add(1)
		c.memHits.Add(1)
		return f, Memory, nil
	}
	cl, waiting := c.calls[k]
	if !waiting {
		cl = &call{done: make(chan struct{})}
		c.calls[k] = cl
	}
	c.mu.Unlock()
	if !waiting {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			// Detached from the caller (others may wait on it) but not from
			// the cache: Close cancels every load still running. It stays
			// in the caller's trace, when traced.
			lctx, cancel := context.WithTimeout(trace.ContextWithSpan(c.bgCtx, trace.SpanFromContext(ctx)), c.cfg.LoadTimeout)
			cl.f, cl.status, cl.err = c.loadThrough(lctx, k, q)
			cancel()
			if cl.err == nil {
				c.store(k, q, cl.f)
			}
			c.mu.Lock()
			delete(c.calls, k)
			c.mu.Unlock()
			close(cl.done)
		}()
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		return nil, NotLooked, fmt.Errorf("semcache: %w", ctx.Err())
	}
	if cl.err != nil {
		return nil, NotLooked, cl.err
	}
	st := cl.status
	if waiting {
		st = Shared
	}
	if !counted {
		return cl.f, st, nil
	}
	switch st {
	case Miss:
		c.misses.Add(1)
	case Redis:
		c.hits.Add(1)
		c.redisHits.Add(1)
	case Shared:
		c.hits.Add(1)
		c.sharedHits.Add(1)
	}
	return cl.f, st, nil
}

// loadThrough consults Redis, takes or waits on the cross-process lease, and
// loads as a last resort.
func (c *Cache) loadThrough(ctx context.Context, k Key, q analysis.Query) (*similarity.Features, Status, error) {
	if c.cfg.Redis != nil && c.redisUp.Load() {
		if f, ok := c.redisGet(ctx, k); ok {
			return f, Redis, nil
		}
		waitUntil := time.Now().Add(c.cfg.WaitTimeout)
		for c.redisUp.Load() && time.Now().Before(waitUntil) {
			acquired, err := c.acquireLease(ctx, k)
			if err != nil {
				break
			}
			if acquired {
				// The previous holder may have published and released
				// between our read and our lease: read once more.
				if f, ok := c.redisGet(ctx, k); ok {
					c.releaseLease(ctx, k)
					return f, Redis, nil
				}
				f, err := c.loadHoldingLease(ctx, k, q)
				return f, Miss, err
			}
			f, st := c.waitForPeer(ctx, k, waitUntil)
			if st == peerDone {
				return f, Shared, nil
			}
			if st != peerGone {
				break
			}
		}
	}
	f, err := c.load(ctx, q)
	if err == nil && c.cfg.Redis != nil && c.redisUp.Load() {
		c.redisSet(ctx, k, f)
	}
	return f, Miss, err
}

func (c *Cache) load(ctx context.Context, q analysis.Query) (*similarity.Features, error) {
	f, err := c.load0(ctx, q)
	if err == nil && f == nil {
		return nil, errors.New("semcache: loader returned no features")
	}
	return f, err
}

func (c *Cache) load0(ctx context.Context, q analysis.Query) (f *similarity.Features, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("semcache: loader panicked: %v", r)
		}
	}()
	return c.loader.Load(ctx, q)
}

// Warm loads queries into the cache, at most eight at a time, and returns
// how many are now cached. Failures are joined into the error. It counts no
// lookup, hit or miss and no hit in an entry's life: those describe the
// jobs' traffic (the hit rate, cache report's reuse and ages at hit), and a
// warm file of texts already cached would otherwise read as a jump in the
// hit rate.
func (c *Cache) Warm(ctx context.Context, qs []analysis.Query) (int, error) {
	var (
		n    atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, q := range qs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return int(n.Load()), ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, _, err := c.fill(ctx, KeyOf(q), q, false); err != nil {
				mu.Lock()
				if len(errs) < 10 {
					errs = append(errs, err)
				}
				mu.Unlock()
				return
			}
			n.Add(1)
		}()
	}
	wg.Wait()
	return int(n.Load()), errors.Join(errs...)
}

// Metrics returns a snapshot of the counters.
func (c *Cache) Metrics() Metrics {
	c.mu.Lock()
	size, bytes := len(c.items), c.bytes
	c.mu.Unlock()
	m := Metrics{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Expirations: c.expirations.Load(),
		CurrentSize: size, MaxSize: c.cfg.MaxSize, TTLSeconds: c.cfg.TTL.Seconds(), MemoryBytes: bytes,
		MemoryHits: c.memHits.Load(), RedisHits: c.redisHits.Load(), SharedHits: c.sharedHits.Load(),
		RedisEnabled: c.cfg.Redis != nil, RedisUp: c.redisUp.Load(),
	}
	m.TotalRequests = m.Hits + m.Misses
	if m.TotalRequests > 0 {
		m.HitRate = float64(m.Hits) / float64(m.TotalRequests)
	}
	return m
}
