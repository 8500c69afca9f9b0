package web_test

import (
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/foxcpp/go-mockdns"

	"postfach/internal/core"
	"postfach/internal/dnscheck"
)

// TestBrowserMailAccountLifecycle drives Chromium through seed 002: Anlegen gives the account
// its p-addresses, the SPF column and the Domainkonfiguration show the check's outcome with
// the record to add, and Löschen takes two confirmations, the second with the counts.
func TestBrowserMailAccountLifecycle(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t, "http://"+e.srv.HTTPAddr)
	admin := b.tab()
	b.login(admin, "demo", "admin")

	b.do(admin, "create account",
		chromedp.Navigate(b.base+"/admin/mail-accounts"),
		chromedp.Click(chromedp.CSS(`#add-account`)),
		chromedp.WaitVisible(chromedp.CSS(`#account-new`)),
		chromedp.SendKeys(chromedp.CSS(`#account-new input[name="address"]`), "info@anpassen.example"),
		chromedp.SendKeys(chromedp.CSS(`#account-new input[name="sender_name"]`), "Anpassen GmbH"),
		chromedp.Click(chromedp.CSS(`#create`)),
		chromedp.WaitVisible(chromedp.CSS(`#p-addresses`)),
	)
	inbound, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS(`#inbound-address`)))
	if err != nil {
		t.Fatal(err)
	}
	outbound, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS(`#outbound-address`)))
	if err != nil {
		t.Fatal(err)
	}
	local, _, _ := strings.Cut(inbound, "@")
	if !strings.HasPrefix(local, "p") || outbound != strings.Replace(inbound, "@", ".out@", 1) {
		t.Fatalf("p-addresses: inbound %q outbound %q", inbound, outbound)
	}
	b.screenshot(admin, "account-created")

	// The domain check against a mock DNS: an SPF record without our include.
	const include = "_spf.postfach.test"
	srv, err := mockdns.NewServerWithLogger(map[string]mockdns.Zone{
		include + ".":          {TXT: []string{"v=spf1 ip4:192.0.2.10 -all"}},
		"anpassen.example.":    {A: []string{"198.51.100.3"}, MX: []net.MX{{Host: "mx.anpassen.example.", Pref: 10}}, TXT: []string{"v=spf1 mx -all"}},
		"mx.anpassen.example.": {A: []string{"198.51.100.4"}},
	}, log.New(io.Discard, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	checker := dnscheck.NewChecker(srv.NewResolver(), dnscheck.Config{SPFInclude: include, ReturnPathDomain: e.srv.Core.InboundDomain, Timeout: 5 * time.Second})
	if n, err := e.srv.Core.RunDomainChecks(e.ctx, core.DomainCheckRun{Checker: checker}); err != nil || n == 0 {
		t.Fatalf("domain checks: %d %v", n, err)
	}
	const adapt = "Für die Domain anpassen.example ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen E-Mailversand angepasst werden muss."
	b.do(admin, "list with SPF column", chromedp.Navigate(b.base+"/admin/mail-accounts"), chromedp.WaitVisible(chromedp.CSS(`#accounts`)))
	if list, _ := chromedp.Run(admin, chromedp.Text(chromedp.CSS(`#accounts`))); !strings.Contains(list, adapt) {
		t.Errorf("SPF column lacks the seed message:\n%s", list)
	}
	b.screenshot(admin, "accounts")
	b.do(admin, "Domainkonfiguration",
		chromedp.Click(chromedp.CSS(`#accounts a.spf`)),
		chromedp.WaitVisible(chromedp.CSS(`#domain-headline`)),
	)
	report, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS(`#domain-report`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, adapt) || !strings.Contains(report, "include:"+include) {
		t.Errorf("Domainkonfiguration lacks the message or the record to add:\n%s", report)
	}
	b.screenshot(admin, "account-domain")

	// Löschen: first confirmation, then the second with the figures.
	b.do(admin, "first confirmation", chromedp.Click(chromedp.CSS(`#tab-delete`)), chromedp.WaitVisible(chromedp.CSS(`#confirm ul.lost`)))
	b.screenshot(admin, "account-delete-1")
	b.do(admin, "second confirmation", chromedp.Click(chromedp.CSS(`#confirm-button`)), chromedp.WaitVisible(chromedp.CSS(`#confirm ul.kept`)))
	second, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS(`#confirm`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second, "0 Nachrichten werden endgültig gelöscht") || !strings.Contains(second, "im Journal eines Kontakts") {
		t.Errorf("second confirmation lacks the counts:\n%s", second)
	}
	b.screenshot(admin, "account-delete-2")
	b.do(admin, "delete", chromedp.Click(chromedp.CSS(`#confirm-button`)), chromedp.WaitVisible(chromedp.CSS(`p.flash.ok`)))
	accounts, err := e.srv.Core.Accounts(e.ctx, e.admin)
	if err != nil || len(accounts) != 0 {
		t.Errorf("after deletion: %v %v", accounts, err)
	}
}
