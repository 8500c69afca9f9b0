package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"postfach/internal/mailout"
	"postfach/internal/store"
)

// Tenant domains (H1): a tenant claims a domain, proves it by publishing
// "postfach-verify=<token>" as a TXT record at the domain, and may then create hosted
// mailboxes on it. The records the tenant should publish for mail (MX, SPF, DKIM, DMARC)
// are shown next to the domain.

// VerifyPrefix starts the TXT record that proves a domain belongs to a tenant.
const VerifyPrefix = "postfach-verify="

// TXTResolver is the part of a DNS resolver domain verification needs.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// DNSRecord is one record the tenant should publish.
type DNSRecord struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Value   string `json:"value"`
	Purpose string `json:"purpose"` // verify, mx, spf, dkim, dmarc
}

// DomainView is a tenant domain with the records to create.
type DomainView struct {
	store.TenantDomain
	Verified bool        `json:"verified"`
	Records  []DNSRecord `json:"records"`
}

func (s *Service) domainView(ctx context.Context, d store.TenantDomain) DomainView {
	h := s.Hosting
	mx := h.Endpoints.Hostname
	if mx == "" {
		mx = "localhost"
	}
	include := h.SPFInclude
	if include == "" {
		include = "_spf." + mx
	}
	recs := []DNSRecord{
		{Type: "TXT", Name: d.Domain, Value: VerifyPrefix + d.VerifyToken, Purpose: "verify"},
		{Type: "MX", Name: d.Domain, Value: "10 " + mx + ".", Purpose: "mx"},
		{Type: "TXT", Name: d.Domain, Value: "v=spf1 mx include:" + include + " ~all", Purpose: "spf"},
		{Type: "TXT", Name: "_dmarc." + d.Domain, Value: "v=DMARC1; p=quarantine; rua=mailto:postmaster@" + d.Domain, Purpose: "dmarc"},
	}
	// The DKIM record is the domain's own signing key (created on first use), the same one
	// the queue signs with (X5).
	if sg, err := s.dkimSigner(ctx, d.TenantID, d.Domain); err == nil {
		if val, err := mailout.DNSRecord(sg.Key.Public()); err == nil {
			recs = append(recs[:3], append([]DNSRecord{{Type: "TXT", Name: sg.Selector + "._domainkey." + d.Domain, Value: val, Purpose: "dkim"}}, recs[3:]...)...)
		}
	} else {
		s.Log.Warn("dkim key for domain record", "domain", d.Domain, "err", err)
	}
	return DomainView{TenantDomain: d, Verified: d.Verified(), Records: recs}
}

func (v *validator) domain(field, value string) string {
	value = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(value)), ".")
	if value == "" {
		v.add(invalid(field, "error.required", nil))
		return value
	}
	if checkAddress("postmaster@"+value) != nil || !strings.Contains(value, ".") {
		v.add(invalid(field, "error.bad_domain", map[string]string{"value": value}))
	}
	return value
}

// AddTenantDomain claims a domain for the actor's tenant and returns the TXT record that
// proves it. A domain claimed by another tenant is refused without saying by whom.
func (s *Service) AddTenantDomain(ctx context.Context, a Actor, domain string) (DomainView, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return DomainView{}, err
	}
	var v validator
	domain = v.domain("domain", domain)
	if err := v.err(); err != nil {
		return DomainView{}, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return DomainView{}, fmt.Errorf("core: verify token: %w", err)
	}
	var d store.TenantDomain
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = tx.CreateTenantDomain(ctx, tid, domain, hex.EncodeToString(b[:])); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "domain.add", idStr("domain", d.ID), domain)
	})
	if err != nil {
		return DomainView{}, fromStore(err, "domain", "error.domain_taken")
	}
	return s.domainView(ctx, d), nil
}

// TenantDomains lists the actor's tenant's domains with the records to create.
func (s *Service) TenantDomains(ctx context.Context, a Actor) ([]DomainView, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().TenantDomains(ctx, tid)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	out := make([]DomainView, 0, len(list))
	for _, d := range list {
		out = append(out, s.domainView(ctx, d))
	}
	return out, nil
}

// TenantDomain reads one domain of the actor's tenant.
func (s *Service) TenantDomain(ctx context.Context, a Actor, id int64) (DomainView, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return DomainView{}, err
	}
	d, err := s.DB.Read().TenantDomain(ctx, tid, id)
	if err != nil {
		return DomainView{}, fromStore(err, "", "")
	}
	return s.domainView(ctx, d), nil
}

// VerifyTenantDomain looks up the domain's TXT records now and marks it verified when the
// token is there. The outcome of the lookup is stored either way and shown on the domain.
func (s *Service) VerifyTenantDomain(ctx context.Context, a Actor, id int64) (DomainView, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return DomainView{}, err
	}
	d, err := s.DB.Read().TenantDomain(ctx, tid, id)
	if err != nil {
		return DomainView{}, fromStore(err, "", "")
	}
	var resolver TXTResolver = net.DefaultResolver
	if s.Hosting.Resolver != nil {
		resolver = s.Hosting.Resolver
	}
	found, checkErr := false, ""
	txts, err := resolver.LookupTXT(ctx, d.Domain)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		checkErr = "no TXT record at " + d.Domain
	case err != nil:
		checkErr = "DNS lookup failed: " + err.Error()
	}
	for _, t := range txts {
		if strings.TrimSpace(t) == VerifyPrefix+d.VerifyToken {
			found = true
		}
	}
	if err == nil && !found {
		checkErr = "TXT record " + VerifyPrefix + d.VerifyToken + " not found at " + d.Domain
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.RecordDomainCheck(ctx, tid, id, found, checkErr); err != nil {
			return err
		}
		outcome := "failed"
		if found {
			outcome = "verified"
		}
		if err := s.audit(ctx, tx, a, tid, "domain.verify", idStr("domain", id), d.Domain+" "+outcome); err != nil {
			return err
		}
		d, err = tx.TenantDomain(ctx, tid, id)
		return err
	})
	if err != nil {
		return DomainView{}, fromStore(err, "", "")
	}
	return s.domainView(ctx, d), nil
}

// DeleteTenantDomain removes a domain that carries no hosted mailbox.
func (s *Service) DeleteTenantDomain(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.TenantDomain(ctx, tid, id)
		if err != nil {
			return err
		}
		n, err := tx.CountHostedOnDomain(ctx, tid, d.Domain)
		if err != nil {
			return err
		}
		if n > 0 {
			return &Error{Status: http.StatusConflict, Key: "error.domain_in_use", Params: map[string]string{"domain": d.Domain, "count": itoa(n)}}
		}
		if err := tx.DeleteTenantDomain(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "domain.delete", idStr("domain", id), d.Domain)
	}), "", "")
}
