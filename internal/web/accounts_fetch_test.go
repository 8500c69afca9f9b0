package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/store"
)

// TestAccountFetchTab drives the Abruf tab: folders appear only after a synchronisation
// (C10), the import choice is saved, the server's special-use folders are suggested (C9),
// and an Office 365 account shows "Erneut autorisieren" until signed in; "Verbinden" offers
// the provider's sign-in page with our callback (C2).
func TestAccountFetchTab(t *testing.T) {
	e := newEnv(t)
	admin := e.login("demo", "admin")
	acc := e.account(t, "abruf@kunde-eins.example", "Abruf")
	tab := fmt.Sprintf("/admin/mail-accounts/%d/abruf", acc.ID)

	if res := admin.get(tab); res.status != 200 || !strings.Contains(res.body, `id="fetch-no-folders"`) || strings.Contains(res.body, `id="oauth"`) {
		t.Fatalf("empty tab: %d\n%s", res.status, res.body)
	}
	if res := admin.post(tab, url.Values{"action": {"sync"}}); res.status != 303 || res.location != tab {
		t.Fatalf("sync: %d %s", res.status, res.location)
	}
	if res := admin.get(tab); !strings.Contains(res.body, `id="fetch-pending"`) || !strings.Contains(res.body, "Ordnersynchronisation ist angefordert") {
		t.Errorf("sync request not shown:\n%s", res.body)
	}

	// What the fetcher writes after a synchronisation.
	if err := e.srv.DB.InTx(e.ctx, func(tx *store.Tx) error {
		return tx.ReplaceAccountFolders(e.ctx, e.tenant.ID, acc.ID, []store.AccountFolder{{Name: "INBOX", Selectable: true, Import: true},
			{Name: "Gesendet", SpecialUse: `\Sent`, Selectable: true}, {Name: "Papierkorb", SpecialUse: `\Trash`, Selectable: true}})
	}); err != nil {
		t.Fatal(err)
	}
	res := admin.get(tab)
	if !strings.Contains(res.body, `value="Gesendet"`) || !strings.Contains(res.body, "<code>Papierkorb</code>") {
		t.Fatalf("folders or suggestion missing:\n%s", res.body)
	}
	form := url.Values{"folder": {"INBOX", "Gesendet", "Papierkorb"}, "import": {"Gesendet"}}
	if res := admin.post(tab+"/ordner", form); res.status != 303 {
		t.Fatalf("save folders: %d\n%s", res.status, res.body)
	}
	folders, err := e.srv.DB.Read().AccountFolders(e.ctx, e.tenant.ID, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		if f.Import != (f.Name == "Gesendet") {
			t.Errorf("folder %s: import %v", f.Name, f.Import)
		}
	}
	if res := admin.post(tab+"/ordner", url.Values{"folder": {"Gibtsnicht"}, "import": {"Gibtsnicht"}}); res.status != 422 {
		t.Errorf("unknown folder: %d", res.status)
	}

	typ, user, host := core.ReceiveIMAPO365, "abruf@kunde-eins.example", "outlook.office365.com"
	if _, err := e.srv.Core.UpdateAccount(e.ctx, e.admin, acc.ID, core.AccountInput{Receive: &core.ReceiveInput{Type: &typ, Host: &host, Username: &user}}); err != nil {
		t.Fatal(err)
	}
	if res := admin.get(tab); !strings.Contains(res.body, `id="oauth-reauthorize"`) || !strings.Contains(res.body, "Anmeldung bei Office 365") {
		t.Errorf("no re-authorise state:\n%s", res.body)
	}
	connect := fmt.Sprintf("/admin/mail-accounts/%d/verbinden", acc.ID)
	if res := admin.post(connect, nil); res.status != 409 || !strings.Contains(res.body, `id="fetch"`) {
		t.Errorf("connect without an OAuth2 app: %d", res.status)
	}
	if err := e.srv.Core.SetOAuthApp(e.ctx, core.DefaultOAuthApp(core.OAuthMicrosoft, "client-id", "client-secret")); err != nil {
		t.Fatal(err)
	}
	// The sign-in page is a link: form-action 'self' would stop a redirect answering the form.
	res = admin.post(connect, nil)
	if res.status != 200 || !strings.Contains(res.body, `id="oauth-signin" rel="noreferrer"`) ||
		!strings.Contains(res.body, `href="https://login.microsoftonline.com/`) ||
		!strings.Contains(res.body, url.QueryEscape("/api/v1/oauth/callback")) || !strings.Contains(res.body, "code_challenge=") {
		t.Errorf("connect: %d\n%s", res.status, res.body)
	}
}
