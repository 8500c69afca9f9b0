package policy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"postfach/internal/i18n"
	"postfach/internal/policy"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// world is a small tenant setup built through the store, the same way the API builds it.
type world struct {
	t      *testing.T
	db     *store.DB
	ctx    context.Context
	tenant store.Tenant
	other  store.Tenant
	user   store.User
	group  store.Group
}

func newWorld(t *testing.T, tenant store.Tenant) *world {
	t.Helper()
	w := &world{t: t, db: storetest.Open(t), ctx: context.Background()}
	w.tx(func(tx *store.Tx) (err error) {
		tenant.Slug, tenant.Name = "acme", "ACME"
		if w.tenant, err = tx.CreateTenant(w.ctx, tenant); err != nil {
			return err
		}
		if w.other, err = tx.CreateTenant(w.ctx, store.Tenant{Name: "Other", Slug: "other", MailboxQuota: 5}); err != nil {
			return err
		}
		if _, err = tx.CreateMailbox(w.ctx, w.tenant.ID, store.Mailbox{Kind: store.KindSystem, Address: "system@acme.example", DisplayName: "ACME", Sender: true, Reply: true, Active: true}); err != nil {
			return err
		}
		if w.user, err = tx.CreateUser(w.ctx, w.tenant.ID, store.User{Login: "mustermann", DisplayName: "Mustermann", Email: "welcome@acme.example", Role: store.RoleUser, Active: true}); err != nil {
			return err
		}
		w.group, err = tx.CreateGroup(w.ctx, w.tenant.ID, "Vertrieb")
		return err
	})
	return w
}

func (w *world) tx(fn func(tx *store.Tx) error) {
	w.t.Helper()
	if err := w.db.InTx(w.ctx, fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) mailbox(tenantID int64, m store.Mailbox) store.Mailbox {
	w.t.Helper()
	if m.Kind == "" {
		m.Kind = store.KindAdditional
	}
	w.tx(func(tx *store.Tx) (err error) { m, err = tx.CreateMailbox(w.ctx, tenantID, m); return err })
	return m
}

func (w *world) grantUser(m store.Mailbox) store.Grant {
	var g store.Grant
	w.tx(func(tx *store.Tx) (err error) {
		g, err = tx.AddGrant(w.ctx, w.tenant.ID, store.Grant{MailboxID: m.ID, UserID: &w.user.ID})
		return err
	})
	return g
}

func (w *world) grantGroup(m store.Mailbox, member bool) store.Grant {
	var g store.Grant
	w.tx(func(tx *store.Tx) (err error) {
		if member {
			if err := tx.AddGroupMember(w.ctx, w.tenant.ID, w.group.ID, w.user.ID); err != nil {
				return err
			}
		}
		g, err = tx.AddGrant(w.ctx, w.tenant.ID, store.Grant{MailboxID: m.ID, GroupID: &w.group.ID})
		return err
	})
	return g
}

func (w *world) options() policy.Options {
	w.t.Helper()
	e := &policy.Engine{DB: w.db}
	o, err := e.Options(w.ctx, w.tenant.ID, w.user.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func labels(list []policy.Option) []string {
	var out []string
	for _, o := range list {
		out = append(out, o.Label+"/"+string(o.Transport))
	}
	return out
}

const sys = "ACME (system@acme.example)/system"

func TestSenderOptions(t *testing.T) {
	t.Parallel()
	type setup func(w *world)
	add := func(m store.Mailbox) setup { return func(w *world) { w.mailbox(w.tenant.ID, m) } }
	info := store.Mailbox{Address: "info@acme.example", DisplayName: "Info", Active: true}
	with := func(m store.Mailbox, f func(*store.Mailbox)) store.Mailbox { f(&m); return m }
	cases := []struct {
		name             string
		tenant           store.Tenant
		setup            []setup
		senders, replies []string
	}{
		{name: "only the system mailbox by default",
			senders: []string{sys}, replies: []string{sys}},
		{name: "sender flag only",
			setup:   []setup{add(with(info, func(m *store.Mailbox) { m.Sender = true }))},
			senders: []string{sys, "Info (info@acme.example)/system"}, replies: []string{sys}},
		{name: "reply flag only",
			setup:   []setup{add(with(info, func(m *store.Mailbox) { m.Reply = true }))},
			senders: []string{sys}, replies: []string{sys, "Info (info@acme.example)/system"}},
		{name: "no flags: offered nowhere",
			setup:   []setup{add(info)},
			senders: []string{sys}, replies: []string{sys}},
		{name: "with authentication: own SMTP transport",
			setup: []setup{add(with(info, func(m *store.Mailbox) {
				m.Sender, m.WithAuth, m.SMTP = true, true, store.SMTPSettings{Host: "smtp.acme.example", Port: 587}
			}))},
			senders: []string{sys, "Info (info@acme.example)/mailbox"}, replies: []string{sys}},
		{name: "inactive additional mailbox is not offered",
			setup:   []setup{add(with(info, func(m *store.Mailbox) { m.Sender, m.Active = true, false }))},
			senders: []string{sys}, replies: []string{sys}},
		{name: "inactive hosted mailbox still sends (H4)",
			setup:   []setup{add(with(info, func(m *store.Mailbox) { m.Sender, m.Active, m.Kind = true, false, store.KindHosted }))},
			senders: []string{sys, "Info (info@acme.example)/system"}, replies: []string{sys}},
		{name: "restricted without grant",
			setup:   []setup{add(with(info, func(m *store.Mailbox) { m.Sender, m.Restricted = true, true }))},
			senders: []string{sys}, replies: []string{sys}},
		{name: "restricted with user grant",
			setup: []setup{func(w *world) {
				w.grantUser(w.mailbox(w.tenant.ID, with(info, func(m *store.Mailbox) { m.Sender, m.Restricted = true, true })))
			}},
			senders: []string{sys, "Info (info@acme.example)/system"}, replies: []string{sys}},
		{name: "restricted with grant to a group the user is in",
			setup: []setup{func(w *world) {
				w.grantGroup(w.mailbox(w.tenant.ID, with(info, func(m *store.Mailbox) { m.Sender, m.Restricted = true, true })), true)
			}},
			senders: []string{sys, "Info (info@acme.example)/system"}, replies: []string{sys}},
		{name: "restricted with grant to a group the user is not in",
			setup: []setup{func(w *world) {
				w.grantGroup(w.mailbox(w.tenant.ID, with(info, func(m *store.Mailbox) { m.Sender, m.Restricted = true, true })), false)
			}},
			senders: []string{sys}, replies: []string{sys}},
		{name: "ended grant no longer counts",
			setup: []setup{func(w *world) {
				g := w.grantUser(w.mailbox(w.tenant.ID, with(info, func(m *store.Mailbox) { m.Sender, m.Restricted = true, true })))
				w.tx(func(tx *store.Tx) error { return tx.EndGrant(w.ctx, w.tenant.ID, g.ID, "test") })
			}},
			senders: []string{sys}, replies: []string{sys}},
		{name: "global mailbox of another tenant is offered",
			setup: []setup{func(w *world) {
				w.mailbox(w.other.ID, store.Mailbox{Address: "global@op.example", DisplayName: "Global", Sender: true, Global: true, Active: true})
			}},
			senders: []string{sys, "Global (global@op.example)/system"}, replies: []string{sys}},
		{name: "another tenant's private mailbox is never offered",
			setup: []setup{func(w *world) {
				w.mailbox(w.other.ID, store.Mailbox{Address: "private@other.example", DisplayName: "Private", Sender: true, Reply: true, Active: true})
			}},
			senders: []string{sys}, replies: []string{sys}},
		{name: "restricted global mailbox needs a grant in the user's tenant",
			setup: []setup{func(w *world) {
				m := w.mailbox(w.other.ID, store.Mailbox{Address: "global@op.example", DisplayName: "Global", Sender: true, Global: true, Restricted: true, Active: true})
				w.grantUser(m)
			}},
			senders: []string{sys, "Global (global@op.example)/system"}, replies: []string{sys}},
		{name: "own address when the tenant allows it (M2): system transport",
			tenant:  store.Tenant{AllowOwnAddress: true},
			senders: []string{sys, "Mustermann (welcome@acme.example)/system"}, replies: []string{sys, "Mustermann (welcome@acme.example)/system"}},
		{name: "duplicate, default: once under the user's name, through the mailbox SMTP (M7)",
			tenant: store.Tenant{AllowOwnAddress: true},
			setup: []setup{add(store.Mailbox{Address: "welcome@acme.example", DisplayName: "celanio GmbH", Sender: true, Active: true, WithAuth: true,
				SMTP: store.SMTPSettings{Host: "smtp.acme.example", Port: 587}})},
			senders: []string{sys, "Mustermann (welcome@acme.example)/mailbox"}, replies: []string{sys, "Mustermann (welcome@acme.example)/system"}},
		{name: "duplicate, both entries",
			tenant:  store.Tenant{AllowOwnAddress: true, DuplicatePolicy: store.DuplicateBoth},
			setup:   []setup{add(store.Mailbox{Address: "welcome@acme.example", DisplayName: "celanio GmbH", Sender: true, Active: true})},
			senders: []string{sys, "celanio GmbH (welcome@acme.example)/system", "Mustermann (welcome@acme.example)/system"},
			replies: []string{sys, "Mustermann (welcome@acme.example)/system"}},
		{name: "duplicate, mailbox under its own name",
			tenant:  store.Tenant{AllowOwnAddress: true, DuplicatePolicy: store.DuplicateMailbox},
			setup:   []setup{add(store.Mailbox{Address: "welcome@acme.example", DisplayName: "celanio GmbH", Sender: true, Active: true})},
			senders: []string{sys, "celanio GmbH (welcome@acme.example)/system"},
			replies: []string{sys, "Mustermann (welcome@acme.example)/system"}},
		{name: "duplicate without the own-address policy: the mailbox as it is",
			setup:   []setup{add(store.Mailbox{Address: "welcome@acme.example", DisplayName: "celanio GmbH", Sender: true, Active: true})},
			senders: []string{sys, "celanio GmbH (welcome@acme.example)/system"}, replies: []string{sys}},
		{name: "hosted mailbox without e-mail name shows the user's name (H6)",
			setup:   []setup{add(store.Mailbox{Kind: store.KindHosted, Address: "pm@acme.example", Sender: true, Active: true})},
			senders: []string{sys, "Mustermann (pm@acme.example)/system"}, replies: []string{sys}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tenant := tc.tenant
			tenant.MailboxQuota = 10
			w := newWorld(t, tenant)
			for _, s := range tc.setup {
				s(w)
			}
			o := w.options()
			if got := labels(o.Senders); !slices.Equal(got, tc.senders) {
				t.Errorf("senders\n got %q\nwant %q", got, tc.senders)
			}
			if got := labels(o.Replies); !slices.Equal(got, tc.replies) {
				t.Errorf("replies\n got %q\nwant %q", got, tc.replies)
			}
		})
	}
}

func TestInactiveUserGetsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.Tenant{AllowOwnAddress: true})
	w.user.Active = false
	w.tx(func(tx *store.Tx) error { return tx.UpdateUser(w.ctx, w.tenant.ID, w.user) })
	if o := w.options(); len(o.Senders) != 0 || len(o.Replies) != 0 {
		t.Fatalf("inactive user has options %+v", o)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	cat := i18n.MustLoad()
	cases := []struct {
		name    string
		tenant  store.Tenant
		setup   func(w *world)
		address string
		role    policy.Role
		allowed bool
		rule    string
		textDE  string
	}{
		{"system mailbox allowed", store.Tenant{}, nil, "system@acme.example", policy.RoleSender, true, "policy.allowed", "auswählbar"},
		{"unknown address", store.Tenant{}, nil, "nobody@acme.example", policy.RoleSender, false, "policy.not_a_mailbox", "kein Postfach Ihres Mandanten"},
		{"other tenant's address looks like unknown", store.Tenant{}, func(w *world) {
			w.mailbox(w.other.ID, store.Mailbox{Address: "x@other.example", Sender: true, Active: true})
		}, "x@other.example", policy.RoleSender, false, "policy.not_a_mailbox", "kein Postfach"},
		{"own address disabled", store.Tenant{}, nil, "welcome@acme.example", policy.RoleSender, false, "policy.own_address_disabled", "eigene E-Mail-Adresse"},
		{"no sender flag", store.Tenant{}, func(w *world) {
			w.mailbox(w.tenant.ID, store.Mailbox{Address: "info@acme.example", DisplayName: "Info", Reply: true, Active: true})
		}, "info@acme.example", policy.RoleSender, false, "policy.no_sender_flag", "„Absender“ nicht angehakt"},
		{"no reply flag", store.Tenant{}, func(w *world) {
			w.mailbox(w.tenant.ID, store.Mailbox{Address: "info@acme.example", DisplayName: "Info", Sender: true, Active: true})
		}, "info@acme.example", policy.RoleReply, false, "policy.no_reply_flag", "„Antwort“ nicht angehakt"},
		{"inactive", store.Tenant{}, func(w *world) {
			w.mailbox(w.tenant.ID, store.Mailbox{Address: "info@acme.example", DisplayName: "Info", Sender: true})
		}, "info@acme.example", policy.RoleSender, false, "policy.mailbox_inactive", "deaktiviert"},
		{"restricted", store.Tenant{}, func(w *world) {
			w.mailbox(w.tenant.ID, store.Mailbox{Address: "info@acme.example", DisplayName: "Info", Sender: true, Restricted: true, Active: true})
		}, "info@acme.example", policy.RoleSender, false, "policy.no_grant", "Benutzerrechte"},
		{"duplicate merged", store.Tenant{AllowOwnAddress: true}, func(w *world) {
			w.mailbox(w.tenant.ID, store.Mailbox{Address: "welcome@acme.example", DisplayName: "celanio GmbH", Sender: true, Active: true, WithAuth: true, SMTP: store.SMTPSettings{Host: "smtp.acme.example"}})
		}, "welcome@acme.example", policy.RoleSender, true, "policy.allowed_merged", "SMTP-Konto"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.tenant.MailboxQuota = 5
			w := newWorld(t, tc.tenant)
			if tc.setup != nil {
				tc.setup(w)
			}
			e := &policy.Engine{DB: w.db}
			d, err := e.Explain(w.ctx, w.tenant.ID, w.user.ID, tc.address, tc.role)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.allowed || d.Rule != tc.rule {
				t.Fatalf("got allowed=%v rule=%s, want %v %s", d.Allowed, d.Rule, tc.allowed, tc.rule)
			}
			de := cat.T("de", d.Rule, d.Params)
			if !strings.Contains(de, tc.textDE) || strings.Contains(de, "{") {
				t.Errorf("German explanation %q lacks %q", de, tc.textDE)
			}
			if en := cat.T("en", d.Rule, d.Params); en == de || strings.Contains(en, "{") {
				t.Errorf("English explanation %q", en)
			}
		})
	}
}

func TestResolveKeys(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.Tenant{MailboxQuota: 5})
	m := w.mailbox(w.tenant.ID, store.Mailbox{Address: "info@acme.example", Sender: true, Restricted: true, Active: true})
	e := &policy.Engine{DB: w.db}
	_, d, err := e.Resolve(w.ctx, w.tenant.ID, w.user.ID, policy.MailboxKey(m.ID), policy.RoleSender)
	if err != nil || d == nil || d.Rule != "policy.no_grant" {
		t.Fatalf("want no_grant, got %+v %v", d, err)
	}
	w.grantUser(m)
	o, d, err := e.Resolve(w.ctx, w.tenant.ID, w.user.ID, policy.MailboxKey(m.ID), policy.RoleSender)
	if err != nil || d != nil || o.Address != "info@acme.example" {
		t.Fatalf("want allowed, got %+v %+v %v", o, d, err)
	}
	_, d, _ = e.Resolve(w.ctx, w.tenant.ID, w.user.ID, "mailbox:999999", policy.RoleSender)
	if d == nil || d.Rule != "policy.unknown_option" {
		t.Fatalf("unknown key: %+v", d)
	}
	_ = fmt.Sprint()
}
