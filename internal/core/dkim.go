package core

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"

	"postfach/internal/mailout"
	"postfach/internal/store"
)

// DKIM keys (X5): every hosted domain of a tenant and the operator's domain get one RSA-2048
// signing key, generated the first time it is needed (a message from the domain is dequeued
// or an admin asks for the DNS record). RSA only, not Ed25519+RSA: every verifier accepts
// RSA-2048 (RFC 8301 §3.2), and one signature per message keeps the signing cost down. The
// private key is stored in dkim_keys sealed by the secrets box with a context bound to the
// tenant and the domain, so a key row copied to another tenant's domain does not open. A
// domain that changed hands (its key opens no more for the new owner) gets a fresh key.

// dkimOperatorTenant is the tenant id in the seal context of the operator's domain key.
const dkimOperatorTenant = 0

// DKIMSigner is a domain's signing key.
type DKIMSigner struct {
	Domain   string
	Selector string
	Key      crypto.Signer
}

// DKIMRecordView is the TXT record an admin publishes for a domain's key.
type DKIMRecordView struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	Name     string `json:"name"` // <selector>._domainkey.<domain>
	Type     string `json:"type"` // TXT
	Value    string `json:"value"`
}

func dkimSealContext(tenantID int64, domain string) string {
	return "dkim-key:" + strconv.FormatInt(tenantID, 10) + ":" + strings.ToLower(domain)
}

// DKIMSigningDomain decides which domain signs a message from fromDomain sent by tenant: a
// verified hosted domain of that tenant signs its own mail; the operator's domain signs the
// addresses on it and its subdomains (the system mailboxes, noreply@<tenant>.<domain>).
// ok is false for every other domain (a customer's own domain, A3), which we may not sign.
func (s *Service) DKIMSigningDomain(ctx context.Context, tenantID int64, fromDomain string) (domain string, owner int64, ok bool, err error) {
	fromDomain = strings.TrimSuffix(strings.ToLower(fromDomain), ".")
	op := strings.ToLower(s.InboundDomain)
	if fromDomain == "" {
		return "", 0, false, nil
	}
	if op != "" && (fromDomain == op || strings.HasSuffix(fromDomain, "."+op)) {
		return op, dkimOperatorTenant, true, nil
	}
	d, err := s.DB.Read().TenantDomainByName(ctx, tenantID, fromDomain)
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("core: dkim domain: %w", err)
	}
	if !d.Verified() {
		return "", 0, false, nil
	}
	return d.Domain, tenantID, true, nil
}

// DKIMSignerFor returns the signer for mail from fromDomain sent by a tenant, or ok false
// when that domain is not ours to sign.
func (s *Service) DKIMSignerFor(ctx context.Context, tenantID int64, fromDomain string) (DKIMSigner, bool, error) {
	domain, owner, ok, err := s.DKIMSigningDomain(ctx, tenantID, fromDomain)
	if err != nil || !ok {
		return DKIMSigner{}, false, err
	}
	sg, err := s.dkimSigner(ctx, owner, domain)
	if err != nil {
		return DKIMSigner{}, false, err
	}
	return sg, true, nil
}

// MessageFromDomain reads the domain of the first From: address of a message header.
func MessageFromDomain(raw []byte) string {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	list, err := mail.ParseAddressList(h.Get("From"))
	if err != nil || len(list) == 0 {
		return ""
	}
	_, d, _ := strings.Cut(list[0].Address, "@")
	return d
}

// dkimSigner loads, or generates and stores, the key of domain owned by tenant owner.
func (s *Service) dkimSigner(ctx context.Context, owner int64, domain string) (DKIMSigner, error) {
	sealCtx := dkimSealContext(owner, domain)
	k, err := s.DB.Read().DKIMKeyFor(ctx, domain)
	switch {
	case err == nil:
		if sg, err := s.openDKIMKey(sealCtx, k); err == nil {
			return sg, nil
		}
		// The key belongs to a former owner of the domain: replace it below.
	case !errors.Is(err, store.ErrNotFound):
		return DKIMSigner{}, fmt.Errorf("core: dkim key: %w", err)
	}
	// Generating RSA-2048 takes a while: do it outside the transaction. When two instances
	// race, the first stored key wins and the other one's is dropped.
	key, err := mailout.GenerateKey(mailout.KeyRSA)
	if err != nil {
		return DKIMSigner{}, fmt.Errorf("core: dkim key: %w", err)
	}
	pemKey, err := mailout.MarshalKey(key)
	if err != nil {
		return DKIMSigner{}, fmt.Errorf("core: dkim key: %w", err)
	}
	sealed, err := s.Secrets.Seal(sealCtx, pemKey)
	if err != nil {
		return DKIMSigner{}, fmt.Errorf("core: dkim key: %w", err)
	}
	// The selector names the month of creation, so a later rotation can publish a new
	// selector beside the old one.
	nk := store.DKIMKey{Domain: domain, Selector: "pf" + s.Now().UTC().Format("200601"), PrivateKey: sealed}
	var stored store.DKIMKey
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if k.PrivateKey != nil {
			if err := tx.ReplaceDKIMKey(ctx, k, nk); err != nil {
				return err
			}
		} else if err := tx.PutDKIMKey(ctx, nk); err != nil {
			return err
		}
		var err error
		stored, err = tx.DKIMKeyFor(ctx, domain)
		return err
	})
	if err != nil {
		return DKIMSigner{}, fmt.Errorf("core: store dkim key: %w", err)
	}
	return s.openDKIMKey(sealCtx, stored)
}

func (s *Service) openDKIMKey(sealCtx string, k store.DKIMKey) (DKIMSigner, error) {
	pemKey, err := s.Secrets.Open(sealCtx, k.PrivateKey)
	if err != nil {
		return DKIMSigner{}, fmt.Errorf("core: open dkim key %s: %w", k.Domain, err)
	}
	key, err := mailout.ParseKey(pemKey)
	if err != nil {
		return DKIMSigner{}, fmt.Errorf("core: dkim key %s: %w", k.Domain, err)
	}
	return DKIMSigner{Domain: k.Domain, Selector: k.Selector, Key: key}, nil
}

// DKIMRecord returns the TXT record to publish for a domain's signing key, generating the
// key on first use. Tenant admins ask for their own domains (verified or not, so the record
// can be published before the first message); the operator also for the operator's domain.
func (s *Service) DKIMRecord(ctx context.Context, a Actor, domain string) (DKIMRecordView, error) {
	v := &validator{}
	domain = v.domain("domain", domain)
	if err := v.err(); err != nil {
		return DKIMRecordView{}, err
	}
	owner := int64(dkimOperatorTenant)
	if domain != strings.ToLower(s.InboundDomain) {
		tid, err := adminTenant(a)
		if err != nil {
			return DKIMRecordView{}, err
		}
		d, err := s.DB.Read().TenantDomainByName(ctx, tid, domain)
		if err != nil {
			return DKIMRecordView{}, fromStore(err, "", "")
		}
		owner, domain = tid, d.Domain
	} else if err := requireOperator(a); err != nil {
		return DKIMRecordView{}, err
	}
	sg, err := s.dkimSigner(ctx, owner, domain)
	if err != nil {
		return DKIMRecordView{}, err
	}
	val, err := mailout.DNSRecord(sg.Key.Public())
	if err != nil {
		return DKIMRecordView{}, fmt.Errorf("core: dkim record: %w", err)
	}
	return DKIMRecordView{Domain: sg.Domain, Selector: sg.Selector, Name: sg.Selector + "._domainkey." + sg.Domain, Type: "TXT", Value: val}, nil
}
