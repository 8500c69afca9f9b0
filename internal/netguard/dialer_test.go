package netguard

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/foxcpp/go-mockdns"
)

// canary is a loopback listener that counts accepted connections. Reaching
// it from a guarded dial means the guard failed.
type canary struct {
	ln       net.Listener
	accepted atomic.Int64
	seen     chan struct{}
}

func startCanary(t *testing.T, network, addr string) *canary {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	c := &canary{ln: ln, seen: make(chan struct{}, 1024)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			conn.Close()
			c.seen <- struct{}{}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *canary) port() uint16 {
	return uint16(c.ln.Addr().(*net.TCPAddr).Port)
}

// assertUntouched proves no earlier connection reached the canary: it makes
// one connection of its own and waits for it; the accept queue is FIFO, so
// any earlier connection would have been counted before it.
func (c *canary) assertUntouched(t *testing.T) {
	t.Helper()
	conn, err := net.Dial(c.ln.Addr().Network(), c.ln.Addr().String())
	if err != nil {
		t.Fatalf("sentinel dial: %v", err)
	}
	conn.Close()
	<-c.seen
	if n := c.accepted.Load(); n != 1 {
		t.Fatalf("canary accepted %d guarded connections, want 0", n-1)
	}
}

func newMockDNS(t *testing.T, zones map[string]mockdns.Zone) *net.Resolver {
	t.Helper()
	srv, err := mockdns.NewServerWithLogger(zones, log.New(io.Discard, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.NewResolver()
}

// refusingConnect records that a socket connect would have happened; tests
// with non-loopback addresses use it so they never send a packet.
func refusingConnect(count *atomic.Int64) func(context.Context, string, netip.AddrPort) (net.Conn, error) {
	return func(context.Context, string, netip.AddrPort) (net.Conn, error) {
		count.Add(1)
		return nil, errors.New("test: connect not allowed")
	}
}

func TestDialerRefusesForbiddenTargets(t *testing.T) {
	t.Parallel()
	c4 := startCanary(t, "tcp4", "127.0.0.1:0")
	port := itoa(c4.port())
	resolver := newMockDNS(t, map[string]mockdns.Zone{
		"loop.example.":         {A: []string{"127.0.0.1"}},
		"loop6.example.":        {AAAA: []string{"::1"}},
		"public-first.example.": {A: []string{"93.184.215.14", "127.0.0.1"}},
		"metadata.example.":     {A: []string{"169.254.169.254"}},
		"mapped.example.":       {AAAA: []string{"::ffff:127.0.0.1"}},
	})
	tests := []struct {
		address string
		want    error
	}{
		{"127.0.0.1:" + port, ErrForbiddenAddress},
		{"[::1]:" + port, ErrForbiddenAddress},
		{"0.0.0.0:" + port, ErrForbiddenAddress},
		{"[::]:" + port, ErrForbiddenAddress},
		{"10.0.0.1:" + port, ErrForbiddenAddress},
		{"169.254.169.254:" + port, ErrForbiddenAddress},
		{"[::ffff:127.0.0.1]:" + port, ErrForbiddenAddress},
		{"[fe80::1%25lo]:" + port, ErrForbiddenAddress},
		{"2130706433:" + port, ErrNumericHost},
		{"0x7f.1:" + port, ErrNumericHost},
		{"017700000001:" + port, ErrNumericHost},
		{"127.1:" + port, ErrNumericHost},
		{"127.0.0.1.:" + port, ErrNumericHost},
		{"localhost:" + port, ErrForbiddenAddress},
		{"loop.example:" + port, ErrForbiddenAddress},
		{"loop6.example:" + port, ErrForbiddenAddress},
		{"public-first.example:" + port, ErrForbiddenAddress},
		{"metadata.example:" + port, ErrForbiddenAddress},
		{"mapped.example:" + port, ErrForbiddenAddress},
	}
	var connects atomic.Int64
	for _, tt := range tests {
		for _, hooked := range []bool{false, true} {
			d := &Dialer{Resolver: resolver}
			if hooked {
				d.connect = refusingConnect(&connects)
			} else if ip, err := netip.ParseAddrPort(tt.address); err == nil && !ip.Addr().IsLoopback() && !ip.Addr().IsUnspecified() {
				continue // never let a real socket near a non-loopback address
			}
			conn, err := d.DialContext(t.Context(), "tcp", tt.address)
			if err == nil {
				conn.Close()
				t.Errorf("DialContext(%s) connected", tt.address)
				continue
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("DialContext(%s) = %v, want %v", tt.address, err, tt.want)
			}
		}
	}
	if n := connects.Load(); n != 0 {
		t.Errorf("%d connects attempted, want 0", n)
	}
	c4.assertUntouched(t)
}

// TestControlRefusesAtConnect bypasses the lookup-time check to show the
// connect-time check alone keeps a socket from reaching loopback, as it would
// if a name were re-resolved (DNS rebinding) by anything below the guard.
func TestControlRefusesAtConnect(t *testing.T) {
	t.Parallel()
	c4 := startCanary(t, "tcp4", "127.0.0.1:0")
	d := &Dialer{}
	nd := net.Dialer{ControlContext: d.control}
	conn, err := nd.DialContext(t.Context(), "tcp", c4.ln.Addr().String())
	if err == nil {
		conn.Close()
		t.Fatal("control allowed a loopback connect")
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("got %v, want ErrForbiddenAddress", err)
	}
	c4.assertUntouched(t)
}

func TestDialerAllowsPolicyRanges(t *testing.T) {
	t.Parallel()
	c4 := startCanary(t, "tcp4", "127.0.0.1:0")
	resolver := newMockDNS(t, map[string]mockdns.Zone{
		"mail.test.": {A: []string{"127.0.0.1"}},
	})
	d := &Dialer{
		Resolver: resolver,
		Policy:   Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}
	for _, address := range []string{c4.ln.Addr().String(), "mail.test:" + itoa(c4.port())} {
		conn, err := d.DialContext(t.Context(), "tcp", address)
		if err != nil {
			t.Fatalf("DialContext(%s): %v", address, err)
		}
		conn.Close()
		<-c4.seen
	}
	if n := c4.accepted.Load(); n != 2 {
		t.Fatalf("accepted %d, want 2", n)
	}
}

func TestDialerPublicAddressReachesConnect(t *testing.T) {
	t.Parallel()
	resolver := newMockDNS(t, map[string]mockdns.Zone{
		"public.example.": {A: []string{"93.184.215.14", "93.184.215.15"}},
	})
	var tried []netip.AddrPort
	d := &Dialer{Resolver: resolver, connect: func(_ context.Context, _ string, ap netip.AddrPort) (net.Conn, error) {
		tried = append(tried, ap)
		return nil, errors.New("test: refused")
	}}
	_, err := d.DialContext(t.Context(), "tcp", "public.example:993")
	if err == nil {
		t.Fatal("fake connect cannot succeed")
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("93.184.215.14:993"), netip.MustParseAddrPort("93.184.215.15:993")}
	if len(tried) != 2 || tried[0] != want[0] || tried[1] != want[1] {
		t.Fatalf("tried %v, want %v in order", tried, want)
	}
}

func TestDialerResolveErrors(t *testing.T) {
	t.Parallel()
	resolver := newMockDNS(t, map[string]mockdns.Zone{})
	d := &Dialer{Resolver: resolver}
	_, err := d.Resolve(t.Context(), "tcp", "missing.example")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("got %v, want a not-found DNS error", err)
	}
	for _, tt := range []struct{ network, address string }{
		{"udp", "mail.example:25"},
		{"tcp", "mail.example"},
		{"tcp", "mail.example:smtp"},
		{"tcp", "mail.example:0"},
		{"tcp", "mail.example:65536"},
	} {
		if _, err := d.DialContext(t.Context(), tt.network, tt.address); err == nil {
			t.Errorf("DialContext(%s, %s) succeeded", tt.network, tt.address)
		}
	}
}

func itoa(p uint16) string {
	return strconv.Itoa(int(p))
}
