package demo_test

import (
	"context"
	"errors"
	"testing"

	"postfach/internal/core"
	"postfach/internal/demo"
	"postfach/internal/i18n"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// A password the user rule refuses stops the seed before anything is written, so a later
// start with a good password seeds the whole demo instead of finding a tenant without users.
func TestSeedRefusesAShortPasswordBeforeWriting(t *testing.T) {
	ctx := context.Background()
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc := core.New(storetest.Open(t), box, i18n.MustLoad(), nil)
	_, err = demo.Seed(ctx, svc, "kurz")
	if fields := core.FieldErrors(err); len(fields) != 1 || fields[0].Field != "demo_password" || fields[0].Key != "error.password_too_short" {
		t.Fatalf("short password: %v", err)
	}
	if _, err := svc.DB.Read().TenantBySlug(ctx, "demo"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused seed left the demo tenant: %v", err)
	}
	info, err := demo.Seed(ctx, svc, "Geheim-Demo-2026!")
	if err != nil || !info.Created {
		t.Fatalf("seed after the refusal: created %v, %v", info.Created, err)
	}
	if _, _, err := svc.Login(ctx, core.LoginInput{Tenant: "demo", Login: "brenner", Password: "Geheim-Demo-2026!"}); err != nil {
		t.Fatalf("demo user cannot log in: %v", err)
	}
}
