package dnscheck

import (
	"context"
	"errors"
	"net"
	"sync"
)

// Resolver is the part of *net.Resolver the checks use. Every method takes
// the context first; a Checker never looks anything up except through it, so
// a check never dials anything but DNS. LookupAddr is needed only for the SPF
// "ptr" mechanism (RFC 7208 section 5.5).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupNS(ctx context.Context, name string) ([]*net.NS, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// lookupState is what a single DNS answer tells us about a name.
type lookupState int

const (
	lookupFound     lookupState = iota // records of the asked type exist
	lookupNotFound                     // NXDOMAIN or no records of this type
	lookupTemporary                    // SERVFAIL, timeout, refused: we know nothing
)

// classify maps a lookup error onto lookupState. The stdlib resolver reports
// NXDOMAIN and "name exists, no records of this type" alike (IsNotFound);
// everything else, including a cancelled or expired context, means our side
// could not get an answer and must not be reported as a broken domain.
func classify(err error) lookupState {
	if err == nil {
		return lookupFound
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
		return lookupNotFound
	}
	return lookupTemporary
}

// memoResolver answers repeated questions within one Check from memory. The
// SPF evaluation asks again for the TXT, MX and address records the checker
// already fetched; without this each check would cost several extra queries.
// Concurrent identical questions wait for the first one instead of racing.
type memoResolver struct {
	next    Resolver
	mu      sync.Mutex
	entries map[string]*memoEntry
}

type memoEntry struct {
	done  chan struct{}
	value any
	err   error
}

func newMemoResolver(next Resolver) *memoResolver {
	return &memoResolver{next: next, entries: make(map[string]*memoEntry)}
}

func memoize[T any](ctx context.Context, m *memoResolver, key string, lookup func(context.Context) (T, error)) (T, error) {
	m.mu.Lock()
	entry, ok := m.entries[key]
	if !ok {
		entry = &memoEntry{done: make(chan struct{})}
		m.entries[key] = entry
		m.mu.Unlock()
		entry.value, entry.err = lookup(ctx)
		close(entry.done)
	} else {
		m.mu.Unlock()
		select {
		case <-entry.done:
		case <-ctx.Done():
			var zero T
			return zero, &net.DNSError{Err: ctx.Err().Error(), IsTimeout: true, IsTemporary: true}
		}
	}
	value, _ := entry.value.(T)
	// The error is returned as is: the SPF library inspects *net.DNSError.
	return value, entry.err
}

func (m *memoResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return memoize(ctx, m, "TXT "+canonicalName(name), func(ctx context.Context) ([]string, error) {
		return m.next.LookupTXT(ctx, name)
	})
}

func (m *memoResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return memoize(ctx, m, "MX "+canonicalName(name), func(ctx context.Context) ([]*net.MX, error) {
		return m.next.LookupMX(ctx, name)
	})
}

func (m *memoResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return memoize(ctx, m, "IP "+canonicalName(host), func(ctx context.Context) ([]net.IPAddr, error) {
		return m.next.LookupIPAddr(ctx, host)
	})
}

func (m *memoResolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	return memoize(ctx, m, "NS "+canonicalName(name), func(ctx context.Context) ([]*net.NS, error) {
		return m.next.LookupNS(ctx, name)
	})
}

func (m *memoResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return memoize(ctx, m, "PTR "+addr, func(ctx context.Context) ([]string, error) {
		return m.next.LookupAddr(ctx, addr)
	})
}
