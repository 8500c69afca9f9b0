package testpeers

import (
	"net"
	"strconv"
	"testing"
)

// HostPort splits a listener's "host:port" address into the host and the port number that
// account forms and connection settings take.
func HostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("testpeers: address %q: %v", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("testpeers: port of %q: %v", addr, err)
	}
	return host, port
}
