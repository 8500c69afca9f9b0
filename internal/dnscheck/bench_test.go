package dnscheck

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

// countingConn counts DNS messages written, i.e. queries on the wire,
// retries included. It embeds *net.UDPConn so the resolver still sees a
// net.PacketConn and uses datagram framing.
type countingConn struct {
	*net.UDPConn
	queries *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.queries.Add(1)
	return c.UDPConn.Write(p)
}

// benchZones builds n domains in five profiles: healthy, SPF without our
// include, no MX, not existing, DKIM key missing.
func benchZones(n int) (map[string]mockdns.Zone, []string) {
	zones := testZones()
	domains := make([]string, n)
	for i := range domains {
		domain := fmt.Sprintf("d%04d.example", i)
		domains[i] = domain
		if i%5 == 3 {
			continue // not in the zone: NXDOMAIN
		}
		for name, zone := range healthyZone(domain) {
			switch {
			case i%5 == 1 && name == domain+".":
				zone.TXT = []string{"v=spf1 mx -all"}
			case i%5 == 2 && name == domain+".":
				zone.MX = nil
			case i%5 == 4 && name == "pf1._domainkey."+domain+".":
				continue
			}
			zones[name] = zone
		}
	}
	return zones, domains
}

// BenchmarkCheckMany1000 checks 1,000 domains against the mock DNS server
// and, in the same run and with the same concurrency, measures how many
// plain TXT queries per second that server answers, so checks/s can be read
// against the DNS capacity it consumes.
func BenchmarkCheckMany1000(b *testing.B) {
	zones, domains := benchZones(1000)
	srv, err := mockdns.NewServerWithLogger(zones, discardLogger{}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	var queries atomic.Int64
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "udp4", srv.LocalAddr().String())
			if err != nil {
				return nil, err
			}
			return countingConn{UDPConn: conn.(*net.UDPConn), queries: &queries}, nil
		},
	}
	checker := NewChecker(resolver, testConfig())

	for _, concurrency := range []int{8, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			queries.Store(0)
			start := time.Now()
			for b.Loop() {
				reports := checker.CheckMany(context.Background(), domains, concurrency)
				if reports[0].Outcome != OutcomeOK || reports[3].Outcome != OutcomeUnreachable {
					b.Fatalf("unexpected outcomes %q %q", reports[0].Outcome, reports[3].Outcome)
				}
			}
			checkElapsed := time.Since(start)
			checks := float64(b.N * len(domains))
			checkQueries := queries.Load()

			// Raw rate: the same number of TXT queries with the same
			// concurrency, no checking logic.
			rawStart := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range concurrency {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > checkQueries {
							return
						}
						name := canonicalName(domains[int(i)%len(domains)])
						if _, err := resolver.LookupTXT(context.Background(), name); err != nil && classify(err) == lookupTemporary {
							b.Errorf("raw query: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			rawElapsed := time.Since(rawStart)

			checksPerSec := checks / checkElapsed.Seconds()
			queriesPerCheck := float64(checkQueries) / checks
			rawPerSec := float64(checkQueries) / rawElapsed.Seconds()
			b.ReportMetric(checksPerSec, "checks/s")
			b.ReportMetric(queriesPerCheck, "queries/check")
			b.ReportMetric(rawPerSec, "raw-queries/s")
			b.ReportMetric(checksPerSec*queriesPerCheck/rawPerSec, "dns-efficiency")
			b.ReportMetric(checksPerSec/rawPerSec, "checks-per-raw-query")
		})
	}
}
