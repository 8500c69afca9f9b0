package core

import (
	"context"
	"net/http"

	"postfach/internal/store"
)

// SMTPInput are the settings of a mailbox with its own login (mit Authentifizierung).
// The password is write-only: nil keeps the stored one, "" removes it.
type SMTPInput struct {
	Host     *string `json:"host,omitempty"`
	Port     *int    `json:"port,omitempty"`
	Security *string `json:"security,omitempty"` // none, tls, starttls
	Auth     *bool   `json:"auth,omitempty"`
	Username *string `json:"username,omitempty"`
	Password *string `json:"password,omitempty"`
}

// MailboxInput creates or changes an additional mailbox (Zusätzliches Postfach).
type MailboxInput struct {
	Address     *string    `json:"address,omitempty"`
	DisplayName *string    `json:"display_name,omitempty"`
	Reply       *bool      `json:"reply,omitempty"`
	Sender      *bool      `json:"sender,omitempty"`
	Global      *bool      `json:"global,omitempty"`
	WithAuth    *bool      `json:"with_auth,omitempty"`
	Restricted  *bool      `json:"restricted,omitempty"`
	VIP         *bool      `json:"vip,omitempty"`
	Active      *bool      `json:"active,omitempty"`
	SMTP        *SMTPInput `json:"smtp,omitempty"`
}

// smtpSecretContext binds a sealed SMTP password to its tenant and mailbox address.
func smtpSecretContext(tenantID int64) string {
	return "tenant:" + itoa(int(tenantID)) + "/mailbox-smtp"
}

func (s *Service) applyMailbox(v *validator, a Actor, m *store.Mailbox, in MailboxInput, create bool) (newPassword *string) {
	if in.Address != nil || create {
		m.Address = v.address("address", deref(in.Address), true)
	}
	if in.DisplayName != nil {
		m.DisplayName = v.text("display_name", *in.DisplayName, false, 120)
	}
	set := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	set(&m.Reply, in.Reply)
	set(&m.Sender, in.Sender)
	set(&m.WithAuth, in.WithAuth)
	set(&m.Restricted, in.Restricted)
	set(&m.VIP, in.VIP)
	if in.Active != nil {
		m.Active = *in.Active
	} else if create {
		m.Active = true
	}
	if in.Global != nil && *in.Global != m.Global {
		// Global makes a mailbox usable by every tenant: only the operator decides that.
		if !a.isOperator() {
			v.add(&Error{Status: http.StatusForbidden, Key: "error.global_operator_only", Field: "global", Params: map[string]string{"field": "global"}})
		}
		m.Global = *in.Global
	}
	if in.SMTP != nil {
		if in.SMTP.Host != nil {
			m.SMTP.Host = *in.SMTP.Host
		}
		if in.SMTP.Port != nil {
			m.SMTP.Port = *in.SMTP.Port
		}
		if in.SMTP.Security != nil {
			m.SMTP.Security = v.oneOf("smtp.security", *in.SMTP.Security, "none", "tls", "starttls")
		}
		set(&m.SMTP.Auth, in.SMTP.Auth)
		if in.SMTP.Username != nil {
			m.SMTP.Username = v.text("smtp.username", *in.SMTP.Username, false, 254)
		}
		if in.SMTP.Password != nil {
			if len(*in.SMTP.Password) > 1000 {
				v.add(invalid("smtp.password", "error.too_long", map[string]string{"max": "1000"}))
			}
			newPassword = in.SMTP.Password
		}
	}
	if m.SMTP.Security == "" {
		m.SMTP.Security = "starttls"
	}
	if m.WithAuth {
		m.SMTP.Host = v.host("smtp.host", m.SMTP.Host)
		if m.SMTP.Port == 0 {
			m.SMTP.Port = map[string]int{"none": 25, "tls": 465, "starttls": 587}[m.SMTP.Security]
		}
		v.port("smtp.port", m.SMTP.Port)
		if m.SMTP.Auth && m.SMTP.Username == "" {
			v.add(invalid("smtp.username", "error.required", nil))
		}
	}
	return newPassword
}

// CreateMailbox adds an additional mailbox, within the tenant's quota (M4, M5).
func (s *Service) CreateMailbox(ctx context.Context, a Actor, in MailboxInput) (store.Mailbox, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Mailbox{}, err
	}
	var v validator
	m := store.Mailbox{Kind: store.KindAdditional}
	pw := s.applyMailbox(&v, a, &m, in, true)
	if err := v.err(); err != nil {
		return store.Mailbox{}, err
	}
	if pw != nil && *pw != "" {
		if m.SMTP.PasswordEncrypted, err = s.Secrets.SealString(smtpSecretContext(tid), *pw); err != nil {
			return store.Mailbox{}, err
		}
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.Tenant(ctx, tid)
		if err != nil {
			return err
		}
		n, err := tx.CountMailboxes(ctx, tid, store.KindAdditional)
		if err != nil {
			return err
		}
		if n >= t.MailboxQuota {
			return &Error{Status: http.StatusConflict, Key: "error.mailbox_quota", Params: map[string]string{"quota": itoa(t.MailboxQuota), "count": itoa(n)}}
		}
		if m, err = tx.CreateMailbox(ctx, tid, m); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "mailbox.create", idStr("mailbox", m.ID), mailboxSummary(m))
	})
	return m, fromStore(err, "address", "error.duplicate")
}

func mailboxSummary(m store.Mailbox) string {
	return m.Address + " sender=" + boolStr(m.Sender) + " reply=" + boolStr(m.Reply) + " global=" + boolStr(m.Global) +
		" with_auth=" + boolStr(m.WithAuth) + " restricted=" + boolStr(m.Restricted) + " active=" + boolStr(m.Active)
}

// UpdateMailbox changes a mailbox of the actor's tenant.
func (s *Service) UpdateMailbox(ctx context.Context, a Actor, id int64, in MailboxInput) (store.Mailbox, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := tx.Mailbox(ctx, tid, id)
		if err != nil {
			return err
		}
		var v validator
		if m.Kind == store.KindSystem && (in.Address != nil && store.NormalizeAddress(*in.Address) != m.Address || in.Active != nil && !*in.Active) {
			v.add(invalid("address", "error.system_mailbox_fixed", nil))
		}
		pw := s.applyMailbox(&v, a, &m, in, false)
		if err := v.err(); err != nil {
			return err
		}
		m.SMTP.PasswordEncrypted = nil // keep unless a new one is given
		detail := mailboxSummary(m)
		if pw != nil {
			sealed, err := s.Secrets.SealString(smtpSecretContext(tid), *pw)
			if err != nil {
				return err
			}
			m.SMTP.PasswordEncrypted = sealed
			if sealed == nil {
				m.SMTP.PasswordEncrypted = []byte{}
			}
			detail += " smtp_password=changed"
		}
		if err := tx.UpdateMailbox(ctx, tid, m); err != nil {
			return err
		}
		if out, err = tx.Mailbox(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "mailbox.update", idStr("mailbox", id), detail)
	})
	return out, fromStore(err, "address", "error.duplicate")
}

// Mailbox reads a mailbox of the actor's tenant, or a global one.
func (s *Service) Mailbox(ctx context.Context, a Actor, id int64) (store.Mailbox, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Mailbox{}, err
	}
	m, err := s.DB.Read().Mailbox(ctx, tid, id)
	return m, fromStore(err, "", "")
}

// MailboxList is the Zusätzliche Postfächer page's data: the tenant's own mailboxes, the
// global ones of others, and the quota.
type MailboxList struct {
	Mailboxes []store.Mailbox `json:"mailboxes"`
	Global    []store.Mailbox `json:"global"`
	Quota     int             `json:"quota"`
	Used      int             `json:"used"`
}

// Mailboxes lists the tenant's mailboxes.
func (s *Service) Mailboxes(ctx context.Context, a Actor) (MailboxList, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return MailboxList{}, err
	}
	tx := s.DB.Read()
	out := MailboxList{Mailboxes: []store.Mailbox{}, Global: []store.Mailbox{}}
	own, err := tx.Mailboxes(ctx, tid, store.MailboxesFilter{})
	if err != nil {
		return out, fromStore(err, "", "")
	}
	for _, m := range own {
		out.Mailboxes = append(out.Mailboxes, m)
		if m.Kind == store.KindAdditional {
			out.Used++
		}
	}
	global, err := tx.GlobalMailboxes(ctx)
	if err != nil {
		return out, fromStore(err, "", "")
	}
	for _, m := range global {
		if m.TenantID != tid {
			m.SMTP = store.SMTPSettings{} // another tenant's server settings are not ours to see
			out.Global = append(out.Global, m)
		}
	}
	t, err := tx.Tenant(ctx, tid)
	if err != nil {
		return out, fromStore(err, "", "")
	}
	out.Quota = t.MailboxQuota
	return out, nil
}

// DeleteMailbox removes an additional mailbox.
func (s *Service) DeleteMailbox(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := tx.Mailbox(ctx, tid, id)
		if err != nil {
			return err
		}
		switch m.Kind {
		case store.KindSystem:
			return &Error{Status: http.StatusConflict, Key: "error.system_mailbox_fixed"}
		case store.KindAccount, store.KindHosted:
			// Accounts and hosted mailboxes hold mail: they are deleted through their own
			// pages, which confirm twice and keep journal-filed messages (A6, C7).
			return &Error{Status: http.StatusConflict, Key: "error.delete_elsewhere"}
		}
		if err := tx.DeleteMailbox(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "mailbox.delete", idStr("mailbox", id), m.Address)
	}), "", "")
}

// SMTPPassword opens a mailbox's stored SMTP password for the transport. Never for display.
func (s *Service) SMTPPassword(m store.Mailbox) (string, error) {
	return s.Secrets.OpenString(smtpSecretContext(m.TenantID), m.SMTP.PasswordEncrypted)
}

// GrantInput names who gets a mailbox: exactly one of UserID and GroupID.
type GrantInput struct {
	UserID  *int64 `json:"user_id,omitempty"`
	GroupID *int64 `json:"group_id,omitempty"`
}

// GrantList is a mailbox's Benutzerrechte: current grants and the full history.
type GrantList struct {
	Open    []store.Grant `json:"open"`
	History []store.Grant `json:"history"`
}

// Grants lists who may use a mailbox, now and before.
func (s *Service) Grants(ctx context.Context, a Actor, mailboxID int64) (GrantList, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return GrantList{}, err
	}
	tx := s.DB.Read()
	if _, err := tx.MailboxVisible(ctx, tid, mailboxID); err != nil {
		return GrantList{}, fromStore(err, "", "")
	}
	open, err := tx.OpenGrants(ctx, tid, mailboxID)
	if err != nil {
		return GrantList{}, fromStore(err, "", "")
	}
	hist, err := tx.GrantHistory(ctx, tid, mailboxID)
	if err != nil {
		return GrantList{}, fromStore(err, "", "")
	}
	if open == nil {
		open = []store.Grant{}
	}
	if hist == nil {
		hist = []store.Grant{}
	}
	return GrantList{Open: open, History: hist}, nil
}

// AddGrant lets a user or group of the actor's tenant use a mailbox (own or global).
// The user sees the mailbox in the dropdown as soon as this returns.
func (s *Service) AddGrant(ctx context.Context, a Actor, mailboxID int64, in GrantInput) (store.Grant, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Grant{}, err
	}
	if (in.UserID == nil) == (in.GroupID == nil) {
		return store.Grant{}, invalid("user_id", "error.grant_one_subject", nil)
	}
	var g store.Grant
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.MailboxVisible(ctx, tid, mailboxID); err != nil {
			return err
		}
		subject := ""
		if in.UserID != nil {
			if _, err := tx.User(ctx, tid, *in.UserID); err != nil {
				return invalid("user_id", "error.unknown_user", map[string]string{"value": itoa(int(*in.UserID))})
			}
			subject = idStr("user", *in.UserID)
		} else {
			if _, err := tx.Group(ctx, tid, *in.GroupID); err != nil {
				return invalid("group_id", "error.unknown_group", map[string]string{"value": itoa(int(*in.GroupID))})
			}
			subject = idStr("group", *in.GroupID)
		}
		var err error
		g, err = tx.AddGrant(ctx, tid, store.Grant{MailboxID: mailboxID, UserID: in.UserID, GroupID: in.GroupID, GrantedBy: a.label()})
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "grant.add", idStr("mailbox", mailboxID), subject)
	})
	return g, fromStore(err, "", "")
}

// EndGrant revokes a grant; its history stays.
func (s *Service) EndGrant(ctx context.Context, a Actor, mailboxID, grantID int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		g, err := tx.Grant(ctx, tid, grantID)
		if err != nil || g.MailboxID != mailboxID {
			return notFound(err)
		}
		if err := tx.EndGrant(ctx, tid, grantID, a.label()); err != nil {
			return err
		}
		subject := ""
		if g.UserID != nil {
			subject = idStr("user", *g.UserID)
		} else if g.GroupID != nil {
			subject = idStr("group", *g.GroupID)
		}
		return s.audit(ctx, tx, a, tid, "grant.end", idStr("mailbox", mailboxID), subject)
	}), "", "")
}
