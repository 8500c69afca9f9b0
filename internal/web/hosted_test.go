package web_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/mailstore"
)

// TestOutOfOfficeKeepsOtherSettings saves an Abwesenheitsnotiz through the form and checks
// that it is stored under out_of_office while the keys of other packages stay as they were.
func TestOutOfOfficeKeepsOtherSettings(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	admin := e.login("demo", "admin")
	res := admin.post(fmt.Sprintf("/admin/hosted/%d/abwesenheit", f.hostedID), url.Values{"ooo.enabled": {"1"}, "ooo.subject": {"Urlaub"},
		"ooo.text": {"Ich bin bis Montag nicht da."}, "ooo.start": {"2026-07-01T08:00"}, "ooo.period_days": {"3"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", res.status, res.body)
	}
	o, err := e.srv.Core.OutOfOffice(e.ctx, e.admin, f.hostedID)
	if err != nil || !o.Enabled || o.Subject != "Urlaub" || o.PeriodDays != 3 || o.Start == nil || o.End != nil {
		t.Fatalf("stored: %+v %v", o, err)
	}
	page := admin.get(fmt.Sprintf("/admin/hosted/%d", f.hostedID))
	if !strings.Contains(page.body, `value="2026-07-01T08:00"`) || !strings.Contains(page.body, "Ich bin bis Montag nicht da.") {
		t.Error("the detail page does not show the stored reply")
	}

	// A mail account's receive settings live in the same JSON: they survive.
	host, typ, user := "imap.kunde-eins.example", core.ReceiveIMAP, "info"
	if _, err := e.srv.Core.UpdateAccount(e.ctx, e.admin, f.accountID, core.AccountInput{Receive: &core.ReceiveInput{Type: &typ, Host: &host, Username: &user}}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Core.SetOutOfOffice(e.ctx, e.admin, f.accountID, mailstore.OutOfOffice{Enabled: true, Text: "weg"}); err != nil {
		t.Fatal(err)
	}
	acc, err := e.srv.Core.Account(e.ctx, e.admin, f.accountID)
	if err != nil || acc.Receive.Host != host || acc.Receive.Username != user {
		t.Errorf("account settings after the out-of-office reply: %+v %v", acc.Receive, err)
	}
	if o, _ := e.srv.Core.OutOfOffice(e.ctx, e.admin, f.accountID); o.Text != "weg" {
		t.Errorf("account reply: %+v", o)
	}
	// An additional mailbox has no out-of-office reply.
	if err := e.srv.Core.SetOutOfOffice(e.ctx, e.admin, f.mailboxID, mailstore.OutOfOffice{}); core.AsError(err).Status != http.StatusNotFound {
		t.Errorf("additional mailbox: %v", err)
	}
}

// TestNewPasswordNeedsConfirmationAndShowsItOnce regenerates a hosted mailbox's password
// through the confirmation page: the old one stops working for protocol logins at once.
func TestNewPasswordNeedsConfirmationAndShowsItOnce(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	admin := e.login("demo", "admin")
	path := fmt.Sprintf("/admin/hosted/%d/passwort", f.hostedID)
	shown := admin.post(path, url.Values{"own_password": {demoPassword}})
	old := between(shown.body, `<code class="secret" id="password">`, `</code>`)
	if old == "" {
		t.Fatalf("password not shown:\n%s", shown.body)
	}
	confirm := admin.get(path + "/neu")
	if !strings.Contains(confirm.body, "Das alte Passwort ist sofort ungültig") {
		t.Errorf("confirmation does not say the old password stops working:\n%s", confirm.body)
	}
	res := admin.post(path+"/neu", nil)
	fresh := between(res.body, `<code class="secret" id="password">`, `</code>`)
	if res.status != http.StatusOK || fresh == "" || fresh == old {
		t.Fatalf("regenerate: %d, new %q old %q", res.status, fresh, old)
	}
	if again := admin.get(fmt.Sprintf("/admin/hosted/%d", f.hostedID)); strings.Contains(again.body, fresh) {
		t.Error("the password is shown again without re-authentication")
	}
	ip := netip.MustParseAddr("192.0.2.1")
	if _, err := e.srv.Core.AuthenticateHosted(e.ctx, "imap", "team@eigene-domain.example", old, ip); err == nil {
		t.Error("the old password still logs in")
	}
	if _, err := e.srv.Core.AuthenticateHosted(e.ctx, "imap", "team@eigene-domain.example", fresh, ip); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
