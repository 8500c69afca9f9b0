package core

import (
	"context"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"postfach/internal/dnscheck"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

const testSPFInclude = "_spf.postfach.example"

func mockResolver(t *testing.T, zones map[string]mockdns.Zone) *net.Resolver {
	t.Helper()
	srv, err := mockdns.NewServerWithLogger(zones, log.New(io.Discard, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.NewResolver()
}

// TestDomainChecksThroughCore runs the stored, periodic domain check against a mock DNS
// server and reads the results the way the account list and the Domainkonfiguration do:
// every outcome of the seed, with its exact German text, and English for English callers.
func TestDomainChecksThroughCore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "dns")
	resolver := mockResolver(t, map[string]mockdns.Zone{
		testSPFInclude + ".":     {TXT: []string{"v=spf1 ip4:192.0.2.10 -all"}},
		"ok.example.":            {A: []string{"198.51.100.1"}, MX: []net.MX{{Host: "mx.ok.example.", Pref: 10}}, TXT: []string{"v=spf1 mx include:" + testSPFInclude + " -all"}},
		"mx.ok.example.":         {A: []string{"198.51.100.2"}},
		"anpassen.example.":      {A: []string{"198.51.100.3"}, MX: []net.MX{{Host: "mx.ok.example.", Pref: 10}}, TXT: []string{"v=spf1 mx -all"}},
		"ohnemx.example.":        {A: []string{"198.51.100.4"}, TXT: []string{"v=spf1 include:" + testSPFInclude + " -all"}},
		"_dmarc.ok.example.":     {TXT: []string{"v=DMARC1; p=reject"}},
		"_dmarc.ohnemx.example.": {TXT: []string{"v=DMARC1; p=none"}},
	})
	checker := dnscheck.NewChecker(resolver, dnscheck.Config{SPFInclude: testSPFInclude, ReturnPathDomain: "in.postfach.test", Timeout: 5 * time.Second})

	accounts := map[string]Account{}
	for _, d := range []string{"ok.example", "anpassen.example", "ohnemx.example", "weg.example"} {
		accounts[d] = f.create(t, "info@"+d)
	}
	f.create(t, "vertrieb@ok.example") // a second account on a domain: one check

	n, err := f.svc.RunDomainChecks(ctx, DomainCheckRun{Checker: checker})
	if err != nil || n != 4 {
		t.Fatalf("checked %d domains, err %v; want 4", n, err)
	}
	if n, _ := f.svc.RunDomainChecks(ctx, DomainCheckRun{Checker: checker}); n != 0 {
		t.Errorf("checked %d domains again at once; want 0 until due", n)
	}

	seed := map[string]struct{ outcome, de, en string }{
		"ok.example":       {"ok", "", ""},
		"anpassen.example": {"spf_needs_include", "Für die Domain anpassen.example ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen E-Mailversand angepasst werden muss.", ""},
		"ohnemx.example":   {"no_mx", "Die Domain ohnemx.example ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt.", ""},
		"weg.example":      {"unreachable", "Die Domain weg.example ist nicht erreichbar.", "The domain weg.example cannot be reached."},
	}
	list, err := f.svc.Accounts(ctx, f.admin)
	if err != nil {
		t.Fatal(err)
	}
	en := f.admin
	en.Lang = "en"
	listEN, _ := f.svc.Accounts(ctx, en)
	for i, acc := range list {
		want := seed[acc.Domain]
		st := acc.DomainStatus
		if st.Outcome != want.outcome || st.Pending || st.CheckedAt == 0 {
			t.Errorf("%s: status %+v, want outcome %s", acc.Address, st, want.outcome)
		}
		if want.de != "" && st.Message != want.de {
			t.Errorf("%s: German text %q, want %q", acc.Domain, st.Message, want.de)
		}
		if want.en != "" && listEN[i].DomainStatus.Message != want.en {
			t.Errorf("%s: English text %q, want %q", acc.Domain, listEN[i].DomainStatus.Message, want.en)
		}
	}

	// The Domainkonfiguration shows the record to publish, with our include added.
	rep, err := f.svc.AccountDomainReport(ctx, f.admin, accounts["anpassen.example"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SPF.Record != "v=spf1 mx -all" || !strings.Contains(rep.SPF.Suggested, "include:"+testSPFInclude) || rep.SPF.Advice == "" || len(rep.Findings) == 0 {
		t.Errorf("report %+v", rep)
	}

	// "Check again" makes it due; the next round checks only that domain.
	again, err := f.svc.RequestDomainCheck(ctx, f.admin, accounts["weg.example"].ID)
	if err != nil || !again.Pending {
		t.Fatalf("request: %+v %v", again, err)
	}
	if n, err := f.svc.RunDomainChecks(ctx, DomainCheckRun{Checker: checker}); n != 1 || err != nil {
		t.Errorf("after a request: checked %d, %v", n, err)
	}

	// Another tenant cannot read or trigger it.
	other := newAccountsFixture(t, db, "dns2")
	if _, err := other.svc.AccountDomainReport(ctx, other.admin, accounts["ok.example"].ID); statusOf(err) != 404 {
		t.Errorf("foreign report: %v", err)
	}
	if _, err := other.svc.RequestDomainCheck(ctx, other.admin, accounts["ok.example"].ID); statusOf(err) != 404 {
		t.Errorf("foreign request: %v", err)
	}

	// Deleting the only account of a domain drops its check at the next sync.
	p, _ := f.svc.AccountDeletePreview(ctx, f.admin, accounts["weg.example"].ID)
	if _, err := f.svc.DeleteAccount(ctx, f.admin, accounts["weg.example"].ID, p.Confirm); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SyncDomainChecks(ctx); err != nil {
		t.Fatal(err)
	}
	checks, _ := db.Read().DomainChecks(ctx, f.tenant)
	if len(checks) != 3 {
		t.Errorf("%d checks after the sync, want 3: %+v", len(checks), checks)
	}
}

// TestDomainCheckLease: two instances claiming at once never get the same domain.
func TestDomainCheckLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "lease")
	for _, d := range []string{"a.example", "b.example", "c.example"} {
		f.create(t, "x@"+d)
	}
	claim := func() []store.DomainCheck {
		var got []store.DomainCheck
		err := db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			got, err = tx.ClaimDueDomainChecks(ctx, 2, time.Minute.Milliseconds())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first, second, third := claim(), claim(), claim()
	if len(first) != 2 || len(second) != 1 || len(third) != 0 || second[0].ID == first[0].ID || second[0].ID == first[1].ID {
		t.Errorf("claims %v / %v / %v", first, second, third)
	}
}
