package semcache

// The shared tier: reads and writes of Redis, the lease that lets one
// worker load a text while the others wait for its answer, and the
// watch that takes Redis out of the path when it fails and back when it
// answers again.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

func (c *Cache) valueKey(k Key) string { return c.cfg.KeyPrefix + k.String() }
func (c *Cache) leaseKey(k Key) string { return c.cfg.KeyPrefix + "lease:" + k.String() }

// redisGet reads tier 2. Absent, garbage and Redis errors are all misses.
func (c *Cache) redisGet(ctx context.Context, k Key) (*similarity.Features, bool) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	b, err := c.rdb().Get(rctx, c.valueKey(k)).Bytes()
	if err != nil {
		c.redisFailed(err)
		return nil, false
	}
	var f similarity.Features
	if f.UnmarshalBinary(b) != nil {
		return nil, false // garbage: load again, and the set overwrites it
	}
	return &f, true
}

func (c *Cache) redisSet(ctx context.Context, k Key, f *similarity.Features) {
	b, _ := f.MarshalBinary()
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	c.redisFailed(c.rdb().Set(rctx, c.valueKey(k), b, c.cfg.TTL).Err())
}

func (c *Cache) acquireLease(ctx context.Context, k Key) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	ok, err := c.rdb().SetNX(rctx, c.leaseKey(k), c.owner, c.cfg.LeaseTTL).Result()
	if err != nil {
		c.redisFailed(err)
	}
	return ok, err
}

// loadHoldingLease loads while renewing the lease, publishes the answer to
// Redis, then releases the lease so waiters stop polling at once.
func (c *Cache) loadHoldingLease(ctx context.Context, k Key, q analysis.Query) (*similarity.Features, error) {
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(c.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
				_ = renewLease.Run(rctx, c.rdb(), []string{c.leaseKey(k)}, c.owner, c.cfg.LeaseTTL.Milliseconds()).Err()
				cancel()
			}
		}
	}()
	f, err := c.load(ctx, q)
	close(stop)
	<-renewed
	if err == nil {
		c.redisSet(ctx, k, f)
	}
	c.releaseLease(ctx, k)
	return f, err
}

// The lease is renewed and released only by its owner: a holder that
// outlived its lease (a long pause, a slow load) must not extend or delete
// the lease another process has taken since.
var (
	renewLease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	freeLease  = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)

func (c *Cache) releaseLease(ctx context.Context, k Key) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	c.redisFailed(freeLease.Run(rctx, c.rdb(), []string{c.leaseKey(k)}, c.owner).Err())
}

type peerState int

const (
	peerDone    peerState = iota // the value appeared
	peerGone                     // the lease vanished without a value: take over
	peerTimeout                  // gave up waiting, or Redis failed
)

// waitForPeer polls for the value another process is loading, backing off
// from 2 ms to 25 ms, until it appears, the lease is gone, or until.
func (c *Cache) waitForPeer(ctx context.Context, k Key, until time.Time) (*similarity.Features, peerState) {
	delay := 2 * time.Millisecond
	vk, lk := c.valueKey(k), c.leaseKey(k)
	for {
		t := time.NewTimer(min(delay, max(time.Until(until), 0)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, peerTimeout
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
		var get *redis.StringCmd
		var exists *redis.IntCmd
		_, err := c.rdb().Pipelined(rctx, func(p redis.Pipeliner) error {
			get = p.Get(rctx, vk)
			exists = p.Exists(rctx, lk)
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			c.redisFailed(err)
			return nil, peerTimeout
		}
		if b, err := get.Bytes(); err == nil {
			var f similarity.Features
			if f.UnmarshalBinary(b) == nil {
				return &f, peerDone
			}
		}
		if exists.Val() == 0 {
			return nil, peerGone
		}
		if !time.Now().Before(until) {
			return nil, peerTimeout
		}
		delay = min(delay*2, 25*time.Millisecond)
	}
}

// redisFailed classifies a Redis error: nil and "no such key" are fine,
// LOADING (Redis restarting) is a miss, a refused or broken connection
// marks Redis down at once. A timeout is only a suspicion: on a busy
// machine one command can wait past RedisTimeout while Redis is fine, and
// giving up the shared tier for it would cost every worker its
// coalescing until the next probe. A ping with a longer deadline decides.
func (c *Cache) redisFailed(err error) {
	if err == nil || errors.Is(err, redis.Nil) || strings.HasPrefix(err.Error(), "LOADING") {
		return
	}
	if !timedOut(err) {
		c.markDown(err)
		return
	}
	if !c.redisUp.Load() || !c.confirming.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.confirming.Store(false)
		if perr := c.ping(); perr != nil && c.bgCtx.Err() == nil {
			c.markDown(fmt.Errorf("%w, then a ping: %w", err, perr))
		}
	}()
}

// ping checks Redis with a deadline of four command timeouts (1 s by
// default): long enough to ride out a moment's stall, short enough that an
// outage is declared within about a second.
func (c *Cache) ping() error {
	ctx, cancel := context.WithTimeout(c.bgCtx, 4*c.cfg.RedisTimeout)
	defer cancel()
	return c.rdb().Ping(ctx).Err()
}

// timedOut reports whether err is a deadline passing (the command's
// context, a socket timeout, or waiting for a pooled connection) rather
// than Redis refusing or dropping the connection.
func timedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Cache) markDown(cause error) { c.setRedisUp(false, cause) }

// setRedisUp records a change of Redis's state and reports it once.
func (c *Cache) setRedisUp(up bool, cause error) {
	if c.redisUp.CompareAndSwap(!up, up) && c.cfg.OnRedisState != nil {
		c.cfg.OnRedisState(up, cause)
	}
}

// monitor pings Redis every ReconnectInterval: it finds an outage even when
// no lookup is running, and puts tier 2 back in use once Redis answers.
func (c *Cache) monitor() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-c.bgCtx.Done():
			return
		case <-t.C:
		}
		if c.redisUp.Load() {
			if err := c.ping(); err != nil && c.bgCtx.Err() == nil {
				c.markDown(fmt.Errorf("ping: %w", err))
			}
			continue
		}
		c.reconnect()
	}
}

// reconnect probes a Redis that is down. Pooled connections may point at a
// Redis that is gone for good (a container restarted on another address:
// such connections do not fail, they time out one by one), so the probe
// uses a fresh client built from the same options, which then replaces the
// old one, whose connections are closed.
func (c *Cache) reconnect() {
	old := c.client.Load()
	probe := old.UniversalClient
	fresh := false
	if rc, ok := old.UniversalClient.(*redis.Client); ok {
		probe, fresh = redis.NewClient(rc.Options()), true
	}
	ctx, cancel := context.WithTimeout(c.bgCtx, max(c.cfg.RedisTimeout, time.Second))
	err := probe.Ping(ctx).Err()
	cancel()
	if err != nil || c.bgCtx.Err() != nil {
		if fresh {
			_ = probe.Close()
		}
		return
	}
	if fresh {
		c.client.Store(&redisClient{UniversalClient: probe, owned: true})
		if old.owned {
			// Let commands already running on it finish first.
			time.AfterFunc(2*max(c.cfg.RedisTimeout, time.Second), func() { _ = old.Close() })
		}
	}
	c.setRedisUp(true, nil)
}
