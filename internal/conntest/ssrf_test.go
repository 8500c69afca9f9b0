package conntest

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/foxcpp/go-mockdns"

	"postfach/internal/netguard"
)

// TestSSRFTargetsRefused runs connection tests with the production policy
// (nothing but public addresses) against every spelling of an internal
// target. A canary listener on 127.0.0.1 proves nothing reached loopback;
// no test ever connects anywhere else, because the guard refuses before
// connect(2).
func TestSSRFTargetsRefused(t *testing.T) {
	t.Parallel()
	ln := listenLoopback(t)
	var accepted atomic.Int64
	seen := make(chan struct{}, 64)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
			seen <- struct{}{}
		}
	}()
	canaryPort := port(ln)
	resolver := newMockDNS(t, map[string]mockdns.Zone{
		"loopback.test.":     {A: []string{"127.0.0.1"}},
		"loopback6.test.":    {AAAA: []string{"::1"}},
		"public-first.test.": {A: []string{"93.184.215.14", "127.0.0.1"}},
		"metadata.test.":     {A: []string{"169.254.169.254"}},
		"private.test.":      {A: []string{"10.0.0.1"}},
	})
	tester := &Tester{Dialer: &netguard.Dialer{Resolver: resolver}}

	tests := []struct {
		host string
		step Step
		key  string
	}{
		{"127.0.0.1", StepTCP, KeyTCPForbidden},
		{"::1", StepTCP, KeyTCPForbidden},
		{"[::1]", StepDNS, KeyDNSInvalidHost}, // brackets belong to URLs, not to the host field
		{"0.0.0.0", StepTCP, KeyTCPForbidden},
		{"10.0.0.1", StepTCP, KeyTCPForbidden},
		{"169.254.169.254", StepTCP, KeyTCPForbidden},
		{"::ffff:127.0.0.1", StepTCP, KeyTCPForbidden},
		{"2130706433", StepDNS, KeyDNSNumericHost},
		{"0x7f.1", StepDNS, KeyDNSNumericHost},
		{"017700000001", StepDNS, KeyDNSNumericHost},
		{"127.1", StepDNS, KeyDNSNumericHost},
		{"localhost", StepTCP, KeyTCPForbidden},
		{"loopback.test", StepTCP, KeyTCPForbidden},
		{"loopback6.test", StepTCP, KeyTCPForbidden},
		{"public-first.test", StepTCP, KeyTCPForbidden},
		{"metadata.test", StepTCP, KeyTCPForbidden},
		{"private.test", StepTCP, KeyTCPForbidden},
	}
	for _, tt := range tests {
		for _, p := range []Protocol{ProtocolIMAP, ProtocolPOP3, ProtocolSMTP} {
			r := tester.Test(t.Context(), "u", Settings{Protocol: p, Host: tt.host, Port: canaryPort, Security: SecurityNone, Username: "a", Password: "b"})
			if r.OK || r.FailedStep != tt.step || r.MessageKey != tt.key {
				t.Errorf("%s %s: failed=%q key=%q detail=%q; want %q %q", p, tt.host, r.FailedStep, r.MessageKey, r.Detail, tt.step, tt.key)
			}
		}
	}

	// The accept queue is FIFO: once our own sentinel connection has been
	// accepted, any earlier connection would have been counted.
	sentinel, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sentinel.Close()
	<-seen
	if n := accepted.Load() - 1; n != 0 {
		t.Fatalf("canary accepted %d connections from connection tests, want 0", n)
	}
}
