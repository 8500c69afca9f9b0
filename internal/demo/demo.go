// Package demo creates the demo tenant that `postfach serve --demo` starts with. It mirrors
// the manual of seed 000: a system mailbox, the additional mailbox
// "Benutzergruppenverwaltung" restricted to a group, the users Barbara Renner and Paul
// Schneller with their own addresses, and Mustermann, whose own address equals the
// additional mailbox "celanio GmbH" to show the duplicate-address rule.
package demo

import (
	"context"
	"errors"
	"fmt"

	"postfach/internal/core"
	"postfach/internal/store"
)

// Domain of the demo tenant's addresses (reserved for examples, RFC 2606).
const Domain = "celanio.example"

// Info says where to log in.
type Info struct {
	Created  bool
	Tenant   string
	Operator string
	Admin    string
	Users    []string
	Password string
}

// Seed creates the demo data unless the demo tenant exists. Every step goes through the core
// use cases, exactly as an admin clicking through the UI would.
func Seed(ctx context.Context, svc *core.Service, password string) (Info, error) {
	info := Info{Tenant: "demo", Operator: "operator", Admin: "admin", Users: []string{"brenner", "pschneller", "mustermann"}, Password: password}
	if _, err := svc.DB.Read().TenantBySlug(ctx, "demo"); err == nil {
		return info, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return info, fmt.Errorf("demo: %w", err)
	}
	// Checked before anything is written: a refused password used to stop the seed after the
	// operator and the tenant existed, and the next start found "demo" and seeded no users.
	if err := core.CheckPassword("demo_password", password); err != nil {
		return info, err
	}
	hash, err := core.HashPassword(password)
	if err != nil {
		return info, err
	}
	err = svc.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.OperatorByLogin(ctx, "operator"); err == nil {
			return nil
		}
		_, err := tx.CreateOperator(ctx, store.Operator{Login: "operator", DisplayName: "Betreiber", PasswordHash: hash})
		return err
	})
	if err != nil {
		return info, fmt.Errorf("demo operator: %w", err)
	}
	op := core.Actor{Kind: core.ActorSystem, Name: "demo"}
	t, err := svc.CreateTenant(ctx, op, core.TenantInput{Name: ptr("celanio GmbH"), Slug: ptr("demo"), SystemAddress: ptr("system@" + Domain),
		AllowOwnAddress: ptr(true), MailboxQuota: ptr(5)})
	if err != nil {
		return info, fmt.Errorf("demo tenant: %w", err)
	}
	a, _ := core.AsOperatorIn(op, t.ID)
	user := func(login, name, email, short, role string) (store.User, error) {
		return svc.CreateUser(ctx, a, core.UserInput{Login: ptr(login), DisplayName: ptr(name), Email: ptr(email), ShortCode: ptr(short), Role: ptr(role),
			Password: ptr(password), Profile: map[string]string{"Telefon": "+49 30 1234567", "Position": "Vertrieb"}})
	}
	if _, err := user("admin", "Anna Admin", "admin@"+Domain, "AA", store.RoleAdmin); err != nil {
		return info, fmt.Errorf("demo admin: %w", err)
	}
	barbara, err := user("brenner", "Barbara Renner", "cel-test09@"+Domain, "BR", store.RoleUser)
	if err != nil {
		return info, fmt.Errorf("demo user: %w", err)
	}
	if _, err := user("pschneller", "Paul Schneller", "cel-test06@"+Domain, "PS", store.RoleUser); err != nil {
		return info, fmt.Errorf("demo user: %w", err)
	}
	if _, err := user("mustermann", "Mustermann", "welcome@"+Domain, "MM", store.RoleUser); err != nil {
		return info, fmt.Errorf("demo user: %w", err)
	}
	group, err := svc.CreateGroup(ctx, a, core.GroupInput{Name: ptr("Benutzergruppenverwaltung"), MemberIDs: []int64{barbara.ID}})
	if err != nil {
		return info, fmt.Errorf("demo group: %w", err)
	}
	mb, err := svc.CreateMailbox(ctx, a, core.MailboxInput{Address: ptr("cel-test08@" + Domain), DisplayName: ptr("Benutzergruppenverwaltung"),
		Sender: ptr(true), Reply: ptr(true), Restricted: ptr(true)})
	if err != nil {
		return info, fmt.Errorf("demo mailbox: %w", err)
	}
	if _, err := svc.AddGrant(ctx, a, mb.ID, core.GrantInput{GroupID: &group.ID}); err != nil {
		return info, fmt.Errorf("demo grant: %w", err)
	}
	if _, err := svc.CreateMailbox(ctx, a, core.MailboxInput{Address: ptr("welcome@" + Domain), DisplayName: ptr("celanio GmbH"),
		Sender: ptr(true), Reply: ptr(true)}); err != nil {
		return info, fmt.Errorf("demo mailbox: %w", err)
	}
	if _, err := svc.CreateTemplate(ctx, a, core.TemplateInput{Name: ptr("Seminareinladung"), Subject: ptr("Einladung zum Seminar"),
		BodyText: ptr("Guten Tag,\n\nwir laden Sie herzlich zu unserem Seminar ein.\n"), SenderKey: ptr("mailbox:" + fmt.Sprint(mb.ID)), ReplyKey: ptr("mailbox:" + fmt.Sprint(mb.ID))}); err != nil {
		return info, fmt.Errorf("demo template: %w", err)
	}
	if _, err := svc.PutSignature(ctx, a, core.SignatureInput{BodyHTML: "<p>Mit freundlichen Grüßen<br>@Name@<br>celanio GmbH · Tel. @Telefon@</p>"}); err != nil {
		return info, fmt.Errorf("demo signature: %w", err)
	}
	info.Created = true
	return info, nil
}

func ptr[T any](v T) *T { return &v }
