package dnscheck

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// startMockDNS serves zones on 127.0.0.1 and returns a stdlib resolver that
// asks only that server.
func startMockDNS(tb testing.TB, zones map[string]mockdns.Zone) *net.Resolver {
	tb.Helper()
	srv, err := mockdns.NewServerWithLogger(zones, discardLogger{}, false)
	if err != nil {
		tb.Fatalf("mock dns: %v", err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv.NewResolver()
}

// blackHoleResolver returns a resolver whose server never answers, to
// provoke timeouts.
func blackHoleResolver(tb testing.TB) *net.Resolver {
	tb.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp4", conn.LocalAddr().String())
		},
	}
}

const testInclude = "_spf.postfach.example"

var (
	testSendingIPs = []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	// Deterministic keys: ours and a stranger's.
	ourDKIMKey   = ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	otherDKIMKey = ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef")).Public().(ed25519.PublicKey)
)

func testConfig() Config {
	return Config{
		SPFInclude:       testInclude,
		SendingIPs:       testSendingIPs,
		ReturnPathDomain: "out.postfach.example",
		DKIMSelectors:    []string{"pf1"},
		DKIMPublicKeys:   map[string][]byte{"pf1": ourDKIMKey},
		Timeout:          5 * time.Second,
		Now:              func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
}

func mx(hosts ...string) []net.MX {
	out := make([]net.MX, 0, len(hosts))
	for i, host := range hosts {
		out = append(out, net.MX{Host: host, Pref: uint16(10 * (i + 1))})
	}
	return out
}

// healthyZone is a domain set up as we ask customers to.
func healthyZone(domain string) map[string]mockdns.Zone {
	return map[string]mockdns.Zone{
		domain + ".": {
			A:   []string{"198.51.100.1"},
			MX:  mx("mx." + domain + "."),
			TXT: []string{"google-site-verification=abc", "v=spf1 mx include:" + testInclude + " -all"},
		},
		"mx." + domain + ".":             {A: []string{"198.51.100.2"}},
		"pf1._domainkey." + domain + ".": {TXT: []string{FormatDKIMKeyRecord("ed25519", ourDKIMKey)}},
		"_dmarc." + domain + ".":         {TXT: []string{"v=DMARC1; p=reject; rua=mailto:dmarc@" + domain}},
	}
}

// testZones is the world every table test resolves in.
func testZones() map[string]mockdns.Zone {
	zones := map[string]mockdns.Zone{
		testInclude + ".":                {TXT: []string{"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"}},
		"_spf.provider.example.":         {TXT: []string{"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all"}},
		"empty.example.":                 {},
		"servfail.example.":              {Err: errors.New("upstream broken")},
		"nullmx.example.":                {A: []string{"198.51.100.9"}, MX: []net.MX{{Host: ".", Pref: 0}}},
		"192.0.2.10._spf.macro.example.": {A: []string{"127.0.0.2"}},
	}
	add := func(domain string, edit func(map[string]mockdns.Zone)) {
		z := healthyZone(domain)
		edit(z)
		for name, zone := range z {
			zones[name] = zone
		}
	}
	setTXT := func(domain string, txt ...string) func(map[string]mockdns.Zone) {
		return func(z map[string]mockdns.Zone) {
			zone := z[domain+"."]
			zone.TXT = txt
			z[domain+"."] = zone
		}
	}
	add("ok.example", func(map[string]mockdns.Zone) {})
	add("needs.example", setTXT("needs.example", "v=spf1 mx -all"))
	add("nospf.example", setTXT("nospf.example"))
	add("late.example", setTXT("late.example", "v=spf1 -all include:"+testInclude))
	add("multi.example", setTXT("multi.example", "v=spf1 mx -all", "v=spf1 include:"+testInclude+" ~all"))
	add("redirect.example", setTXT("redirect.example", "v=spf1 redirect="+testInclude))
	add("provider.example", setTXT("provider.example", "v=spf1 redirect=_spf.provider.example"))
	add("macro.example", setTXT("macro.example", "v=spf1 exists:%{i}._spf.%{d} -all"))
	add("nomx.example", func(z map[string]mockdns.Zone) {
		zone := z["nomx.example."]
		zone.MX = nil
		z["nomx.example."] = zone
	})
	add("dkim-missing.example", func(z map[string]mockdns.Zone) { delete(z, "pf1._domainkey.dkim-missing.example.") })
	add("dkim-mismatch.example", func(z map[string]mockdns.Zone) {
		z["pf1._domainkey.dkim-mismatch.example."] = mockdns.Zone{TXT: []string{FormatDKIMKeyRecord("ed25519", otherDKIMKey)}}
	})
	add("dkim-invalid.example", func(z map[string]mockdns.Zone) {
		z["pf1._domainkey.dkim-invalid.example."] = mockdns.Zone{TXT: []string{"v=DKIM1; k=ed25519; p=!!notbase64"}}
	})
	add("dkim-revoked.example", func(z map[string]mockdns.Zone) {
		z["pf1._domainkey.dkim-revoked.example."] = mockdns.Zone{TXT: []string{"v=DKIM1; p="}}
	})
	add("dmarc-none.example", func(z map[string]mockdns.Zone) {
		z["_dmarc.dmarc-none.example."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=none"}}
	})
	add("dmarc-quarantine.example", func(z map[string]mockdns.Zone) {
		z["_dmarc.dmarc-quarantine.example."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=quarantine; pct=50; adkim=s"}}
		delete(z, "pf1._domainkey.dmarc-quarantine.example.")
	})
	add("dmarc-missing.example", func(z map[string]mockdns.Zone) { delete(z, "_dmarc.dmarc-missing.example.") })
	add("dmarc-invalid.example", func(z map[string]mockdns.Zone) {
		z["_dmarc.dmarc-invalid.example."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=sometimes"}}
	})
	add("org.example", func(z map[string]mockdns.Zone) {
		z["_dmarc.org.example."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=reject; sp=quarantine"}}
	})
	add("subfail.example", func(z map[string]mockdns.Zone) {
		z["pf1._domainkey.subfail.example."] = mockdns.Zone{Err: errors.New("upstream broken")}
		z["_dmarc.subfail.example."] = mockdns.Zone{Err: errors.New("upstream broken")}
	})
	add("sub.org.example", func(z map[string]mockdns.Zone) { delete(z, "_dmarc.sub.org.example.") })
	return zones
}

type zoneEdit struct{ noMX bool }

// zoneWith copies the zone at name with an edit applied.
func zoneWith(zones map[string]mockdns.Zone, name string, edit func(*zoneEdit)) mockdns.Zone {
	var e zoneEdit
	edit(&e)
	zone := zones[name]
	if e.noMX {
		zone.MX = nil
	}
	return zone
}
