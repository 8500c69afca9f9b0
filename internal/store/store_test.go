package store_test

import (
	"context"
	"errors"
	"testing"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	ctx := context.Background()
	applied, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v", applied)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil || v != store.LatestVersion() {
		t.Fatalf("version %d, %v", v, err)
	}
}

func TestRebind(t *testing.T) {
	got := store.Rebind(store.Postgres, `SELECT a FROM t WHERE x = ? AND y = '?' AND z = ?`)
	want := `SELECT a FROM t WHERE x = $1 AND y = '?' AND z = $2`
	if got != want {
		t.Fatalf("got %s", got)
	}
}

func TestEntitiesRoundTripAndTenantScope(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	ctx := context.Background()
	var a, b store.Tenant
	var alice store.User
	var grp store.Group
	var mb store.Mailbox
	err := db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if a, err = tx.CreateTenant(ctx, store.Tenant{Name: "A", Slug: "a", MailboxQuota: 1}); err != nil {
			return err
		}
		if b, err = tx.CreateTenant(ctx, store.Tenant{Name: "B", Slug: "b", MailboxQuota: 1}); err != nil {
			return err
		}
		if alice, err = tx.CreateUser(ctx, a.ID, store.User{Login: "alice", DisplayName: "Alice", Email: "alice@a.example", Role: store.RoleUser, Active: true, Profile: map[string]string{"phone": "1"}}); err != nil {
			return err
		}
		if grp, err = tx.CreateGroup(ctx, a.ID, "Vertrieb"); err != nil {
			return err
		}
		if err = tx.AddGroupMember(ctx, a.ID, grp.ID, alice.ID); err != nil {
			return err
		}
		if err = tx.AddGroupMember(ctx, a.ID, grp.ID, alice.ID); err != nil {
			return err
		}
		mb, err = tx.CreateMailbox(ctx, a.ID, store.Mailbox{Kind: store.KindAdditional, Address: " Info@A.example ", DisplayName: "Info", Sender: true, Restricted: true, Active: true,
			SMTP: store.SMTPSettings{PasswordEncrypted: []byte{1, 2, 3}}})
		if err != nil {
			return err
		}
		_, err = tx.AddGrant(ctx, a.ID, store.Grant{MailboxID: mb.ID, GroupID: &grp.ID, GrantedBy: "test"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tx := db.Read()
	got, err := tx.Mailbox(ctx, a.ID, mb.ID)
	if err != nil || got.Address != "info@a.example" || !got.SMTP.HasPassword || !got.Restricted {
		t.Fatalf("mailbox %+v %v", got, err)
	}
	if _, err := tx.Mailbox(ctx, b.ID, mb.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign tenant read mailbox: %v", err)
	}
	if _, err := tx.User(ctx, b.ID, alice.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign tenant read user: %v", err)
	}
	u, err := tx.User(ctx, a.ID, alice.ID)
	if err != nil || u.Profile["phone"] != "1" {
		t.Fatalf("user %+v %v", u, err)
	}
	usable, err := db.SenderCandidates(ctx, a.ID, alice.ID)
	if err != nil || len(usable) != 1 {
		t.Fatalf("usable %v %v", usable, err)
	}
	g, err := tx.Group(ctx, a.ID, grp.ID)
	if err != nil || len(g.MemberIDs) != 1 {
		t.Fatalf("group %+v %v", g, err)
	}
	err = db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, a.ID, store.User{Login: "alice", DisplayName: "x", Role: store.RoleUser})
		return err
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate login: %v", err)
	}
	err = db.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteMailbox(ctx, b.ID, mb.ID) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign delete: %v", err)
	}
}

func TestInboundAddresses(t *testing.T) {
	t.Parallel()
	for local, want := range map[string]int64{"p14": 14, "P14.out": 14, "p0": 0, "p": 0, "px": 0, "p-1": 0, "q14": 0} {
		id, _, ok := store.ParseInboundLocal(local)
		if (want != 0) != ok || id != want {
			t.Errorf("%s: got %d %v", local, id, ok)
		}
	}
	db := storetest.Open(t)
	ctx := context.Background()
	var a, b store.Mailbox
	err := db.InTx(ctx, func(tx *store.Tx) error {
		tn, err := tx.CreateTenant(ctx, store.Tenant{Name: "T", Slug: "t", MailboxQuota: 1})
		if err != nil {
			return err
		}
		if a, err = tx.CreateMailbox(ctx, tn.ID, store.Mailbox{Kind: store.KindAccount, Address: "a@t.example", Active: true}); err != nil {
			return err
		}
		if b, err = tx.CreateMailbox(ctx, tn.ID, store.Mailbox{Kind: store.KindAccount, Address: "b@t.example", Active: true}); err != nil {
			return err
		}
		return tx.AddInboundAlias(ctx, tn.ID, store.InboundLocal(a.ID), b.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := db.Read().ResolveInboundLocal(ctx, store.InboundLocal(a.ID))
	if err != nil || m.ID != b.ID {
		t.Fatalf("alias: %+v %v", m, err)
	}
	m, err = db.Read().ResolveInboundLocal(ctx, store.InboundLocal(b.ID))
	if err != nil || m.ID != b.ID {
		t.Fatalf("plain: %+v %v", m, err)
	}
	if _, err := db.Read().ResolveInboundLocal(ctx, "p999999"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
