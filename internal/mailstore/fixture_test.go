package mailstore

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// fixture is a tenant with a clock the test moves by hand, so that grant history and
// message times are exact.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	now    atomic.Int64 // unix ms
	tenant store.Tenant
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), db: storetest.Open(t)}
	f.now.Store(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli())
	f.db.SetClock(func() time.Time { return time.UnixMilli(f.now.Load()) })
	f.tx(func(tx *store.Tx) error {
		var err error
		f.tenant, err = tx.CreateTenant(f.ctx, store.Tenant{Name: "Makler", Slug: fmt.Sprintf("makler-%d", time.Now().UnixNano()), MailboxQuota: 10})
		return err
	})
	return f
}

// tick moves the clock one minute on.
func (f *fixture) tick() { f.now.Add(60_000) }

func (f *fixture) tx(fn func(tx *store.Tx) error) {
	f.t.Helper()
	if err := f.db.InTx(f.ctx, fn); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) user(login, shortCode string) int64 {
	f.t.Helper()
	var id int64
	f.tx(func(tx *store.Tx) error {
		u, err := tx.CreateUser(f.ctx, f.tenant.ID, store.User{Login: login, DisplayName: login, ShortCode: shortCode, Role: "user", Active: true, Profile: map[string]string{}})
		id = u.ID
		return err
	})
	return id
}

func (f *fixture) mailbox(kind, address string, vip bool, settings string) store.Mailbox {
	f.t.Helper()
	var m store.Mailbox
	f.tx(func(tx *store.Tx) error {
		var err error
		m, err = tx.CreateMailbox(f.ctx, f.tenant.ID, store.Mailbox{Kind: kind, Address: address, VIP: vip, Active: true, Restricted: true, Settings: settings})
		return err
	})
	return m
}

func (f *fixture) contact(email string) int64 {
	f.t.Helper()
	var id int64
	f.tx(func(tx *store.Tx) error {
		c, err := tx.CreateContact(f.ctx, f.tenant.ID, store.Contact{Email: email})
		id = c.ID
		return err
	})
	return id
}

func (f *fixture) grant(mailboxID, userID int64) int64 {
	f.t.Helper()
	var id int64
	f.tx(func(tx *store.Tx) error {
		g, err := tx.AddGrant(f.ctx, f.tenant.ID, store.Grant{MailboxID: mailboxID, UserID: &userID, GrantedBy: "test"})
		id = g.ID
		return err
	})
	return id
}

func (f *fixture) endGrant(grantID int64) {
	f.t.Helper()
	f.tx(func(tx *store.Tx) error { return tx.EndGrant(f.ctx, f.tenant.ID, grantID, "test") })
}

func (f *fixture) deliver(raw string, envFrom string, mbs ...store.Mailbox) Stored {
	f.t.Helper()
	var out Stored
	f.tx(func(tx *store.Tx) error {
		var err error
		out, err = Deliver(f.ctx, tx, Delivery{Source: "smtp", EnvelopeFrom: envFrom, Mailboxes: mbs,
			Raw: []byte(strings.ReplaceAll(raw, "\n", "\r\n")), Trace: []byte("Received: from test\r\n"), Hostname: "mx.test"})
		return err
	})
	return out
}

// insertSent stores a sent message as the outbound side does: filed at the recipient's contact.
func (f *fixture) insertSent(mb store.Mailbox, msgID string, contactID int64) store.Message {
	f.t.Helper()
	var m store.Message
	f.tx(func(tx *store.Tx) error {
		var err error
		m, err = tx.InsertMessage(f.ctx, f.tenant.ID, store.Message{MailboxID: &mb.ID, Direction: store.DirectionOut, MessageID: msgID,
			ContactID: &contactID, FiledReason: "sent", Subject: "Angebot", Raw: []byte("Subject: Angebot\r\n\r\nx\r\n")})
		if err != nil {
			return err
		}
		return tx.LinkMessageMailbox(f.ctx, f.tenant.ID, m.ID, mb.ID, store.RoleFrom)
	})
	return m
}
