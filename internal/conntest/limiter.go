package conntest

import (
	"sync"
	"time"
)

// Limiter is a token bucket per key: Burst tests at once, refilled at Burst
// per Period. It keeps one small entry per recently active key.
type Limiter struct {
	burst  float64
	period time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxIdleBuckets bounds memory: when more keys than this are tracked, the
// ones whose bucket has refilled completely are dropped (they would start
// full anyway).
const maxIdleBuckets = 10000

// NewLimiter allows burst calls per period per key. now is the clock; nil
// means time.Now.
func NewLimiter(burst int, period time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if burst < 1 {
		burst = 1
	}
	if period <= 0 {
		period = time.Minute
	}
	return &Limiter{burst: float64(burst), period: period, now: now, buckets: make(map[string]*bucket)}
}

// Allow takes a token for key. When none is left it returns false and how
// long until the next one.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxIdleBuckets {
			l.pruneLocked(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	perToken := l.period / time.Duration(l.burst)
	return false, time.Duration((1 - b.tokens) * float64(perToken))
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens += elapsed.Seconds() / l.period.Seconds() * l.burst
		if b.tokens > l.burst {
			b.tokens = l.burst
		}
	}
	b.at = now
}

func (l *Limiter) pruneLocked(now time.Time) {
	for key, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, key)
		}
	}
}
