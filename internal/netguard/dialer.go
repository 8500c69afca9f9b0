package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// DefaultTimeout bounds one DialContext call when Dialer.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Dialer opens TCP connections to user-supplied hosts, refusing addresses
// the Policy forbids. The zero value refuses everything but public addresses
// and uses the default resolver.
//
// A name is resolved once; if any of its addresses is forbidden the whole
// name is refused, without trying the others. A name that mixes a public
// address with a loopback one is either misconfigured or an attack (DNS
// rebinding keeps such answers ready), and "it worked on the second address"
// is not a result a connection test should report as success.
//
// Every connect additionally runs CheckAddr in net.Dialer.ControlContext on
// the address the socket is about to connect to, so nothing that reaches
// connect(2) escapes the policy, whatever resolved it.
type Dialer struct {
	Policy   Policy
	Resolver *net.Resolver // nil: net.DefaultResolver
	Timeout  time.Duration // whole DialContext, lookup included; 0: DefaultTimeout

	// connect replaces the socket connect in tests, so that tests about
	// public addresses never send a packet. It is only called with an
	// address that passed CheckAddr.
	connect func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error)
}

// DialContext connects to address ("host:port") on network "tcp", "tcp4" or
// "tcp6". It has the signature of net.Dialer.DialContext, so it can be
// handed to clients that accept a dial function.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("netguard: %w", err)
	}
	port, err := ParsePort(portStr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	addrs, err := d.Resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return d.DialAddrs(ctx, network, addrs, port)
}

// ParsePort accepts a decimal port 1-65535; service names are refused so
// that no lookup happens outside the guard.
func ParsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("netguard: invalid port %q", s)
	}
	return uint16(n), nil
}

// Resolve normalises host (see NormalizeHost) and looks it up. It does not
// apply the policy; DialAddrs does. An IP literal is returned as is. Lookup
// failures are returned wrapping the resolver's *net.DNSError.
func (d *Dialer) Resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ipNetwork, err := ipNetworkFor(network)
	if err != nil {
		return nil, err
	}
	host, err = NormalizeHost(host)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	resolver := d.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	addrs, err := resolver.LookupNetIP(ctx, ipNetwork, host)
	if err != nil {
		return nil, fmt.Errorf("netguard: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("netguard: resolve %s: %w", host, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true})
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

// DialAddrs checks every address against the policy and, only if all pass,
// connects to them in order until one accepts.
func (d *Dialer) DialAddrs(ctx context.Context, network string, addrs []netip.Addr, port uint16) (net.Conn, error) {
	if _, err := ipNetworkFor(network); err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("netguard: no address to dial")
	}
	for _, ip := range addrs {
		if err := CheckAddr(ip, d.Policy); err != nil {
			return nil, err
		}
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	var firstErr error
	for _, ip := range addrs {
		conn, err := d.connectOne(ctx, network, netip.AddrPortFrom(ip, port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

func (d *Dialer) connectOne(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	if d.connect != nil {
		return d.connect(ctx, network, addr)
	}
	nd := net.Dialer{ControlContext: d.control}
	conn, err := nd.DialContext(ctx, network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("netguard: %w", err)
	}
	return conn, nil
}

// control runs after the socket is created and before connect(2); address is
// the numeric address being connected to.
func (d *Dialer) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: unexpected connect address %q: %w", address, err)
	}
	return CheckAddr(ap.Addr(), d.Policy)
}

func (d *Dialer) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

func ipNetworkFor(network string) (string, error) {
	switch network {
	case "tcp":
		return "ip", nil
	case "tcp4":
		return "ip4", nil
	case "tcp6":
		return "ip6", nil
	}
	return "", fmt.Errorf("netguard: unsupported network %q", network)
}
