package core

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"postfach/internal/store"
)

// TenantInput creates or changes a tenant. Nil fields are left as they are on update.
type TenantInput struct {
	Name            *string `json:"name,omitempty"`
	Slug            *string `json:"slug,omitempty"`
	MailboxQuota    *int    `json:"mailbox_quota,omitempty"`
	AllowOwnAddress *bool   `json:"allow_own_address,omitempty"`
	DuplicatePolicy *string `json:"duplicate_policy,omitempty"`
	VIPNoCcBcc      *bool   `json:"vip_no_cc_bcc,omitempty"`
	// SystemAddress is the tenant's Systemmail-Box; defaults to noreply@<slug>.<inbound domain>.
	SystemAddress *string `json:"system_address,omitempty"`
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

func (s *Service) applyTenant(v *validator, t *store.Tenant, in TenantInput, create bool) {
	if in.Name != nil || create {
		t.Name = v.text("name", deref(in.Name), true, 120)
	}
	if create {
		t.Slug = strings.ToLower(strings.TrimSpace(deref(in.Slug)))
		if !slugPattern.MatchString(t.Slug) {
			v.add(invalid("slug", "error.bad_slug", nil))
		}
		t.MailboxQuota = 1 // the manual's default: one additional mailbox
	}
	if in.MailboxQuota != nil {
		if *in.MailboxQuota < 0 || *in.MailboxQuota > 100000 {
			v.add(invalid("mailbox_quota", "error.bad_quota", nil))
		}
		t.MailboxQuota = *in.MailboxQuota
	}
	if in.AllowOwnAddress != nil {
		t.AllowOwnAddress = *in.AllowOwnAddress
	}
	if in.DuplicatePolicy != nil {
		t.DuplicatePolicy = v.oneOf("duplicate_policy", *in.DuplicatePolicy, store.DuplicateUserName, store.DuplicateBoth, store.DuplicateMailbox)
	} else if create {
		t.DuplicatePolicy = store.DuplicateUserName
	}
	if in.VIPNoCcBcc != nil {
		t.VIPNoCcBcc = *in.VIPNoCcBcc
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// CreateTenant creates a tenant with its system mailbox (operator only).
func (s *Service) CreateTenant(ctx context.Context, a Actor, in TenantInput) (store.Tenant, error) {
	if err := requireOperator(a); err != nil {
		return store.Tenant{}, err
	}
	var v validator
	var t store.Tenant
	s.applyTenant(&v, &t, in, true)
	sysAddr := ""
	if in.SystemAddress != nil {
		sysAddr = v.address("system_address", *in.SystemAddress, true)
	}
	if err := v.err(); err != nil {
		return store.Tenant{}, err
	}
	if sysAddr == "" {
		sysAddr = "noreply@" + t.Slug + "." + s.InboundDomain
	}
	err := s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.CreateTenant(ctx, t); err != nil {
			return err
		}
		if _, err = tx.CreateMailbox(ctx, t.ID, store.Mailbox{Kind: store.KindSystem, Address: sysAddr, DisplayName: t.Name, Sender: true, Reply: true, Active: true}); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, t.ID, "tenant.create", idStr("tenant", t.ID), t.Slug)
	})
	return t, fromStore(err, "slug", "error.duplicate")
}

// UpdateTenant changes a tenant's name, quota and policies (operator only).
func (s *Service) UpdateTenant(ctx context.Context, a Actor, id int64, in TenantInput) (store.Tenant, error) {
	if err := requireOperator(a); err != nil {
		return store.Tenant{}, err
	}
	var out store.Tenant
	err := s.DB.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.Tenant(ctx, id)
		if err != nil {
			return err
		}
		var v validator
		if in.Slug != nil && *in.Slug != t.Slug {
			v.add(invalid("slug", "error.immutable", nil))
		}
		s.applyTenant(&v, &t, in, false)
		if in.SystemAddress != nil {
			v.add(invalid("system_address", "error.immutable", nil))
		}
		if err := v.err(); err != nil {
			return err
		}
		if err := tx.UpdateTenant(ctx, t); err != nil {
			return err
		}
		out = t
		return s.audit(ctx, tx, a, t.ID, "tenant.update", idStr("tenant", t.ID), policySummary(t))
	})
	return out, fromStore(err, "", "")
}

func policySummary(t store.Tenant) string {
	return "quota=" + itoa(t.MailboxQuota) + " own_address=" + boolStr(t.AllowOwnAddress) + " duplicates=" + t.DuplicatePolicy + " vip_no_cc_bcc=" + boolStr(t.VIPNoCcBcc)
}

func boolStr(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Tenant reads a tenant: operators any, others only their own.
func (s *Service) Tenant(ctx context.Context, a Actor, id int64) (store.Tenant, error) {
	if !a.isOperator() && a.TenantID != id {
		return store.Tenant{}, notFound(nil)
	}
	t, err := s.DB.Read().Tenant(ctx, id)
	return t, fromStore(err, "", "")
}

// Tenants lists every tenant (operator only).
func (s *Service) Tenants(ctx context.Context, a Actor) ([]store.Tenant, error) {
	if err := requireOperator(a); err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Tenants(ctx)
	if list == nil {
		list = []store.Tenant{}
	}
	return list, fromStore(err, "", "")
}

// DeleteTenant removes a tenant and everything it owns (operator only).
func (s *Service) DeleteTenant(ctx context.Context, a Actor, id int64) error {
	if err := requireOperator(a); err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteTenant(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, 0, "tenant.delete", idStr("tenant", id), "")
	}), "", "")
}

// AsOperatorIn lets an operator act inside one tenant (the operator area's tenant pages).
func AsOperatorIn(a Actor, tenantID int64) (Actor, error) {
	if !a.isOperator() {
		return a, &Error{Status: http.StatusForbidden, Key: "error.forbidden"}
	}
	a.TenantID = tenantID
	return a, nil
}
