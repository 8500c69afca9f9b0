package netguard

import (
	"errors"
	"net/netip"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	loopbackAllowed := Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	private := Policy{AllowPrivate: true}
	everything := Policy{AllowPrivate: true, AllowedPrefixes: []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"),
	}}
	tests := []struct {
		addr   string
		policy Policy
		want   Reason // "" means allowed
	}{
		{"8.8.8.8", Policy{}, ""},
		{"2a00:1450:4001:80b::200e", Policy{}, ""},
		{"::ffff:8.8.8.8", Policy{}, ""},
		{"127.0.0.1", Policy{}, ReasonLoopback},
		{"127.255.255.254", Policy{}, ReasonLoopback},
		{"::1", Policy{}, ReasonLoopback},
		{"0.0.0.0", Policy{}, ReasonUnspecified},
		{"0.1.2.3", Policy{}, ReasonUnspecified},
		{"::", Policy{}, ReasonUnspecified},
		{"10.0.0.1", Policy{}, ReasonPrivate},
		{"172.16.0.1", Policy{}, ReasonPrivate},
		{"172.31.255.255", Policy{}, ReasonPrivate},
		{"172.32.0.1", Policy{}, ""},
		{"192.168.1.1", Policy{}, ReasonPrivate},
		{"169.254.1.1", Policy{}, ReasonLinkLocal},
		{"169.254.169.254", Policy{}, ReasonMetadata},
		{"fd00:ec2::254", Policy{}, ReasonMetadata},
		{"168.63.129.16", Policy{}, ReasonMetadata},
		{"100.100.100.200", Policy{}, ReasonMetadata},
		{"100.64.0.1", Policy{}, ReasonCGNAT},
		{"100.127.255.255", Policy{}, ReasonCGNAT},
		{"100.128.0.1", Policy{}, ""},
		{"fc00::1", Policy{}, ReasonUniqueLocal},
		{"fd12:3456::1", Policy{}, ReasonUniqueLocal},
		{"fe80::1", Policy{}, ReasonLinkLocal},
		{"fe80::1%eth0", Policy{}, ReasonLinkLocal},
		{"224.0.0.1", Policy{}, ReasonMulticast},
		{"ff02::1", Policy{}, ReasonMulticast},
		{"255.255.255.255", Policy{}, ReasonBroadcast},
		{"240.0.0.1", Policy{}, ReasonReserved},
		{"192.0.2.1", Policy{}, ReasonDocumentation},
		{"2001:db8::1", Policy{}, ReasonDocumentation},
		{"::ffff:127.0.0.1", Policy{}, ReasonLoopback},
		{"::ffff:10.1.2.3", Policy{}, ReasonPrivate},
		{"::ffff:169.254.169.254", Policy{}, ReasonMetadata},
		{"::127.0.0.1", Policy{}, ReasonIPv4Mapped},
		{"::8.8.8.8", Policy{}, ReasonIPv4Mapped},
		{"64:ff9b::7f00:1", Policy{}, ReasonLoopback},
		{"64:ff9b::a9fe:a9fe", Policy{}, ReasonMetadata},
		{"64:ff9b::808:808", Policy{}, ""},
		{"2002:7f00:1::1", Policy{}, ReasonLoopback},
		{"2002:c0a8:101::1", Policy{}, ReasonPrivate},
		{"2002:808:808::1", Policy{}, ""},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", Policy{}, ReasonLoopback}, // Teredo client 127.0.0.1
		{"2001:0:a00:1::1", Policy{}, ReasonPrivate},                       // Teredo server 10.0.0.1

		{"127.0.0.1", loopbackAllowed, ""},
		{"::ffff:127.0.0.1", loopbackAllowed, ""},
		{"::1", loopbackAllowed, ReasonLoopback},
		{"10.0.0.1", loopbackAllowed, ReasonPrivate},
		{"10.0.0.1", private, ""},
		{"100.64.0.1", private, ""},
		{"fd12::1", private, ""},
		{"127.0.0.1", private, ReasonLoopback},
		{"169.254.1.1", private, ReasonLinkLocal},
		{"169.254.169.254", everything, ReasonMetadata},
		{"fd00:ec2::254", everything, ReasonMetadata},
		{"0.0.0.0", everything, ReasonUnspecified},
		{"224.0.0.1", everything, ReasonMulticast},
		{"255.255.255.255", everything, ReasonBroadcast},
		{"192.0.2.1", everything, ""},
	}
	for _, tt := range tests {
		err := CheckAddr(netip.MustParseAddr(tt.addr), tt.policy)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckAddr(%s, %+v) = %v, want allowed", tt.addr, tt.policy, err)
			}
			continue
		}
		var fe *ForbiddenAddressError
		if !errors.As(err, &fe) || !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckAddr(%s, %+v) = %v, want forbidden (%s)", tt.addr, tt.policy, err, tt.want)
			continue
		}
		if fe.Reason != tt.want {
			t.Errorf("CheckAddr(%s): reason %q, want %q", tt.addr, fe.Reason, tt.want)
		}
	}
}

func TestCheckAddrInvalid(t *testing.T) {
	t.Parallel()
	if err := CheckAddr(netip.Addr{}, Policy{AllowPrivate: true}); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("zero address: %v", err)
	}
}

func TestForbiddenAddressErrorText(t *testing.T) {
	t.Parallel()
	err := CheckAddr(netip.MustParseAddr("::ffff:127.0.0.1"), Policy{})
	want := "netguard: address ::ffff:127.0.0.1 is forbidden (loopback, embedded 127.0.0.1)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
