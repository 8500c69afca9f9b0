package mailout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// MXResolver is the part of *net.Resolver that direct delivery needs; tests
// substitute their own.
type MXResolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// maxMXHosts bounds how many MX hosts one attempt tries, so a domain with
// dozens of records cannot hold a queue worker for long.
const maxMXHosts = 5

// MXHosts returns the hosts to try for domain, best first.
//
// RFC 5321 §5.1: MX records sorted by preference (equal preferences in
// random order, which net.Resolver already does); without MX records the
// domain itself is the implicit MX if it has an address. RFC 7505: a single
// MX "." (null MX) says the domain accepts no mail, a permanent failure.
func (d *Deliverer) MXHosts(ctx context.Context, domain string) ([]string, error) {
	if d.Resolver == nil {
		return nil, errors.New("mailout: no resolver for direct delivery")
	}
	domain = strings.TrimSuffix(domain, ".")
	mxs, err := d.Resolver.LookupMX(ctx, domain)
	if err != nil && len(mxs) == 0 {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			return nil, fmt.Errorf("mailout: MX lookup for %s: %w", domain, err)
		}
	}
	var hosts []string
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	for _, mx := range mxs {
		host := strings.TrimSuffix(mx.Host, ".")
		if host == "" {
			if len(mxs) == 1 {
				return nil, &PermanentError{Enhanced: "5.1.10", Reason: fmt.Sprintf("domain %s accepts no mail (null MX, RFC 7505)", domain)}
			}
			continue // a null MX mixed with real ones is a misconfiguration; ignore it
		}
		if !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	if len(hosts) > 0 {
		return hosts[:min(len(hosts), maxMXHosts)], nil
	}
	// Implicit MX (RFC 5321 §5.1): the domain's own A/AAAA records.
	addrs, err := d.Resolver.LookupIPAddr(ctx, domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, &PermanentError{Enhanced: "5.1.2", Reason: fmt.Sprintf("domain %s has no MX and no address", domain)}
		}
		return nil, fmt.Errorf("mailout: address lookup for %s: %w", domain, err)
	}
	if len(addrs) == 0 {
		return nil, &PermanentError{Enhanced: "5.1.2", Reason: fmt.Sprintf("domain %s has no MX and no address", domain)}
	}
	return []string{domain}, nil
}

// DeliverMX delivers directly to the MX hosts of domain, which every
// envelope recipient must belong to. STARTTLS is used when offered, without
// certificate verification (see SecurityOpportunistic). Hosts are tried in
// preference order until one accepts a connection and the transaction
// starts; its answers are final for this attempt.
func (d *Deliverer) DeliverMX(ctx context.Context, env Envelope, domain string, msg []byte) (*Attempt, error) {
	if err := validateEnvelope(env); err != nil {
		return nil, err
	}
	for _, rcpt := range env.To {
		if !strings.EqualFold(rcpt[strings.LastIndexByte(rcpt, '@')+1:], strings.TrimSuffix(domain, ".")) {
			return nil, fmt.Errorf("mailout: recipient %s is not in domain %s", rcpt, domain)
		}
	}
	hosts, err := d.MXHosts(ctx, domain)
	if err != nil {
		a := &Attempt{}
		for _, rcpt := range env.To {
			res := failure(rcpt, err, false)
			if _, perm := errors.AsType[*PermanentError](err); !perm {
				res.Enhanced = "4.4.3" // directory server failure (RFC 3463)
			}
			a.Results = append(a.Results, res)
		}
		return a, err
	}
	port := d.MXPort
	if port == 0 {
		port = 25
	}
	var transcript []string
	var lastErr error
	for _, host := range hosts {
		if ctx.Err() != nil {
			break
		}
		r := Route{Host: host, Port: port, Security: SecurityOpportunistic}
		s, err := d.Open(ctx, r)
		if err != nil {
			var oe *OpenError
			if errors.As(err, &oe) {
				transcript = append(transcript, oe.Transcript...)
			}
			transcript = append(transcript, fmt.Sprintf("-- %s: %v", host, err))
			lastErr = err
			continue
		}
		a, err := s.Send(ctx, env, msg)
		s.Close()
		a.Transcript = append(transcript, a.Transcript...)
		return a, err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("mailout: delivery to %s not attempted: %w", domain, context.Cause(ctx))
	}
	a := openFailure("", env, lastErr)
	a.Transcript = transcript
	return a, lastErr
}
