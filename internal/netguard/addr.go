// Package netguard owns the outbound network guard for hosts that users type
// in (IMAP/POP3/SMTP servers of external accounts, connection tests).
//
// It decides, per IP address, whether Postfach may open a connection there,
// and provides a Dialer that applies that decision at connect time on the
// address the socket is actually connecting to. That closes the classic
// server-side request forgery holes: loopback and private services, cloud
// metadata endpoints, DNS rebinding between lookup and connect, and numeric
// host spellings such as "2130706433" or "0x7f.1" that some resolvers turn
// into 127.0.0.1.
//
// The operator may allow private ranges (on-premises mail servers) with
// Policy.AllowPrivate or list exact ranges in Policy.AllowedPrefixes.
// Cloud metadata, unspecified, multicast and broadcast addresses are never
// allowed, whatever the policy says.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
)

// Policy is the operator's choice of what besides the public internet the
// guard lets through.
type Policy struct {
	// AllowPrivate lets through RFC 1918 private, CGNAT (RFC 6598) and
	// unique-local IPv6 (RFC 4193) addresses, for mail servers on the
	// operator's own network. Loopback and link-local stay refused.
	AllowPrivate bool
	// AllowedPrefixes are explicitly allowed ranges (an on-premises subnet,
	// or 127.0.0.0/8 in tests). They override every reason except the ones
	// that are never allowed (metadata, unspecified, multicast, broadcast).
	AllowedPrefixes []netip.Prefix
}

// Reason says why an address is refused. The values are stable and meant for
// logs, audit records and tests.
type Reason string

// Reasons for refusing an address.
const (
	ReasonInvalid       Reason = "invalid"
	ReasonUnspecified   Reason = "unspecified"
	ReasonLoopback      Reason = "loopback"
	ReasonPrivate       Reason = "private"
	ReasonLinkLocal     Reason = "link-local"
	ReasonMetadata      Reason = "metadata"
	ReasonCGNAT         Reason = "cgnat"
	ReasonUniqueLocal   Reason = "unique-local"
	ReasonMulticast     Reason = "multicast"
	ReasonBroadcast     Reason = "broadcast"
	ReasonIPv4Mapped    Reason = "ipv4-mapped"
	ReasonDocumentation Reason = "documentation"
	ReasonReserved      Reason = "reserved"
)

// ErrForbiddenAddress matches every *ForbiddenAddressError with errors.Is.
var ErrForbiddenAddress = errors.New("netguard: forbidden address")

// ForbiddenAddressError reports an address the policy refuses.
type ForbiddenAddressError struct {
	// Addr is the address as it was going to be dialed.
	Addr netip.Addr
	// Embedded is the IPv4 address that decided the refusal when Addr is an
	// IPv6 address carrying one (IPv4-mapped, NAT64, 6to4, Teredo); zero
	// otherwise.
	Embedded netip.Addr
	Reason   Reason
}

func (e *ForbiddenAddressError) Error() string {
	if e.Embedded.IsValid() {
		return fmt.Sprintf("netguard: address %s is forbidden (%s, embedded %s)", e.Addr, e.Reason, e.Embedded)
	}
	return fmt.Sprintf("netguard: address %s is forbidden (%s)", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *ForbiddenAddressError) Is(target error) bool { return target == ErrForbiddenAddress }

// CheckAddr returns nil when the policy allows connecting to ip, and a
// *ForbiddenAddressError otherwise. IPv4-mapped IPv6 addresses are judged as
// the IPv4 address they carry; IPv6 transition forms that embed an IPv4
// address (NAT64, 6to4, Teredo) are refused when the embedded address is.
func CheckAddr(ip netip.Addr, p Policy) error {
	if !ip.IsValid() {
		return &ForbiddenAddressError{Addr: ip, Reason: ReasonInvalid}
	}
	dialed := ip.WithZone("")
	ip = dialed.Unmap()

	var embedded netip.Addr
	if dialed.Is4In6() {
		embedded = ip
	}
	reason := classify(ip)
	if reason == "" && ip.Is6() {
		for _, v4 := range embeddedIPv4(ip) {
			if r := classify(v4); r != "" {
				reason, embedded = r, v4
				break
			}
		}
	}
	if reason == "" {
		return nil
	}
	if !neverAllowed(reason) {
		for _, prefix := range p.AllowedPrefixes {
			if prefix.Contains(ip) {
				return nil
			}
		}
		if p.AllowPrivate && (reason == ReasonPrivate || reason == ReasonCGNAT || reason == ReasonUniqueLocal) {
			return nil
		}
	}
	return &ForbiddenAddressError{Addr: dialed, Embedded: embedded, Reason: reason}
}

func neverAllowed(r Reason) bool {
	switch r {
	case ReasonInvalid, ReasonMetadata, ReasonUnspecified, ReasonMulticast, ReasonBroadcast:
		return true
	}
	return false
}

type rangeReason struct {
	prefix netip.Prefix
	reason Reason
}

// specialRanges is a read-only table; the first matching entry wins, so the
// narrow metadata entries come before the ranges that contain them.
// Sources: RFC 6890 (special-purpose registries), RFC 1122, RFC 1918,
// RFC 3927, RFC 6598, RFC 5737, RFC 2544, RFC 4193, RFC 4291, RFC 3849,
// RFC 9637, and the cloud providers' documented metadata endpoints.
var specialRanges = []rangeReason{
	// Cloud metadata: AWS/GCP/Azure/OpenStack, AWS ECS task metadata,
	// Alibaba Cloud, Azure WireServer (a public address!), AWS IMDS on IPv6.
	{netip.MustParsePrefix("169.254.169.254/32"), ReasonMetadata},
	{netip.MustParsePrefix("169.254.170.2/32"), ReasonMetadata},
	{netip.MustParsePrefix("100.100.100.200/32"), ReasonMetadata},
	{netip.MustParsePrefix("168.63.129.16/32"), ReasonMetadata},
	{netip.MustParsePrefix("fd00:ec2::254/128"), ReasonMetadata},

	{netip.MustParsePrefix("0.0.0.0/8"), ReasonUnspecified}, // "this network"; Linux connects 0.0.0.0 to itself
	{netip.MustParsePrefix("127.0.0.0/8"), ReasonLoopback},
	{netip.MustParsePrefix("10.0.0.0/8"), ReasonPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), ReasonPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), ReasonPrivate},
	{netip.MustParsePrefix("169.254.0.0/16"), ReasonLinkLocal},
	{netip.MustParsePrefix("100.64.0.0/10"), ReasonCGNAT},
	{netip.MustParsePrefix("192.0.0.0/24"), ReasonReserved}, // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), ReasonDocumentation},
	{netip.MustParsePrefix("198.51.100.0/24"), ReasonDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), ReasonDocumentation},
	{netip.MustParsePrefix("198.18.0.0/15"), ReasonReserved},  // benchmarking
	{netip.MustParsePrefix("192.88.99.0/24"), ReasonReserved}, // deprecated 6to4 relay anycast
	{netip.MustParsePrefix("224.0.0.0/4"), ReasonMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), ReasonBroadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), ReasonReserved},

	{netip.MustParsePrefix("::/128"), ReasonUnspecified},
	{netip.MustParsePrefix("::1/128"), ReasonLoopback},
	// Deprecated IPv4-compatible addresses (RFC 4291 section 2.5.5.1): never
	// routed today, refused outright rather than unpacked.
	{netip.MustParsePrefix("::/96"), ReasonIPv4Mapped},
	{netip.MustParsePrefix("100::/64"), ReasonReserved}, // discard-only
	{netip.MustParsePrefix("2001:2::/48"), ReasonReserved},
	{netip.MustParsePrefix("2001:db8::/32"), ReasonDocumentation},
	{netip.MustParsePrefix("3fff::/20"), ReasonDocumentation},
	{netip.MustParsePrefix("fe80::/10"), ReasonLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), ReasonPrivate}, // deprecated site-local
	{netip.MustParsePrefix("fc00::/7"), ReasonUniqueLocal},
	{netip.MustParsePrefix("ff00::/8"), ReasonMulticast},
}

// classify returns the reason an unmapped address is special, or "" for an
// ordinary public address.
func classify(ip netip.Addr) Reason {
	for _, r := range specialRanges {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215
	sixToFour      = netip.MustParsePrefix("2002::/16")      // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")      // RFC 4380
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 transition address would
// reach, so that 64:ff9b::7f00:1 or 2002:7f00:1:: cannot smuggle loopback.
func embeddedIPv4(ip netip.Addr) []netip.Addr {
	b := ip.As16()
	switch {
	case nat64WellKnown.Contains(ip), nat64Local.Contains(ip):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
	case sixToFour.Contains(ip):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
	case teredo.Contains(ip):
		// RFC 4380 section 4: server address in bits 32-63, client address
		// in the last 32 bits, inverted.
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{netip.AddrFrom4([4]byte(b[4:8])), netip.AddrFrom4(client)}
	}
	return nil
}
