package web

import (
	"html/template"
	"net/http"

	"postfach/internal/core"
	"postfach/internal/store"
)

// The Abruf tab of a mail account (C1, C2, C9, C10): when the account was last fetched, the
// last error, how many messages were imported; "Jetzt abrufen" and "Ordner synchronisieren"
// (the server's folders appear after a synchronisation), the folders to import, the
// drafts/trash/sent mapping the server suggests, and for the Office 365 and Gmail types "Verbinden",
// which starts the OAuth2 sign-in and offers the link to the provider's sign-in page. A revoked grant
// shows "Erneut autorisieren" instead of failing silently.
func (u *UI) accountFetchRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/mail-accounts/{id}/abruf", roleAdmin, u.accountFetchTab)
	h("POST /admin/mail-accounts/{id}/abruf", roleAdmin, u.accountFetchNow)
	h("POST /admin/mail-accounts/{id}/abruf/ordner", roleAdmin, u.accountFetchFolders)
	h("POST /admin/mail-accounts/{id}/verbinden", roleAdmin, u.accountOAuthStart)
}

// oauthCallbackPath is the API's endpoint the provider redirects back to; it answers JSON.
const oauthCallbackPath = "/api/v1/oauth/callback"

// providerName is an OAuth2 provider as the account types name it.
func providerName(provider string) string {
	switch provider {
	case core.OAuthMicrosoft:
		return "Office 365"
	case core.OAuthGoogle:
		return "Google"
	}
	return provider
}

// fetchTab is the Abruf tab's data.
type fetchTab struct {
	Status   core.FetchStatus
	OAuth    bool   // the account's type signs in with OAuth2
	Provider string // its provider's name as users know it
	Reauth   bool   // the grant is missing or revoked
	// SignInURL is the provider's page after "Verbinden", offered as a link.
	SignInURL template.URL
	Folders   []store.AccountFolder
}

func (u *UI) accountFetchTab(w http.ResponseWriter, r *http.Request, p *page) {
	u.showFetchTab(w, r, p, http.StatusOK)
}

func (u *UI) showFetchTab(w http.ResponseWriter, r *http.Request, p *page, status int) {
	u.showFetchTabWith(w, r, p, status, "")
}

// showFetchTabWith renders the tab; signInURL, when set, is the provider's sign-in page.
func (u *UI) showFetchTabWith(w http.ResponseWriter, r *http.Request, p *page, status int, signInURL string) {
	errs, msg := p.Errs, p.Error
	d, ok := u.accountPanel(w, r, p, "fetch")
	if !ok {
		return
	}
	p.Errs, p.Error = errs, msg
	st, err := u.d.Core.AccountFetchStatus(r.Context(), *p.Actor, d.Account.ID)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	provider := core.OAuthProviderFor(d.Account.Receive.Type)
	d.Fetch = &fetchTab{Status: st, OAuth: provider != "", Provider: providerName(provider),
		Reauth: st.OAuth == store.OAuthReauthorize, SignInURL: template.URL(signInURL)} // #nosec G203 -- the provider's https URL from core
	for _, f := range st.Folders {
		if f.Selectable {
			d.Fetch.Folders = append(d.Fetch.Folders, f)
		}
	}
	u.render(w, r, status, "account", p)
}

// accountFetchNow is "Jetzt abrufen", or with action=sync "Ordner synchronisieren".
func (u *UI) accountFetchNow(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err == nil {
		_, err = u.d.Core.FetchAccountNow(r.Context(), *p.Actor, id, r.PostForm.Get("action") == "sync")
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	flash := "web.flash.fetch_requested"
	if r.PostForm.Get("action") == "sync" {
		flash = "web.flash.folder_sync_requested"
	}
	u.redirect(w, r, idPath(accountsPath, id, "abruf"), flash)
}

// accountFetchFolders saves the import choice: every listed folder is named in a hidden
// "folder" field, the ticked ones also in "import".
func (u *UI) accountFetchFolders(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	ticked := map[string]bool{}
	for _, name := range r.PostForm["import"] {
		ticked[name] = true
	}
	var in []core.FolderImport
	for _, name := range r.PostForm["folder"] {
		in = append(in, core.FolderImport{Name: name, Import: ticked[name]})
	}
	if _, err = u.d.Core.SetAccountFolderImport(r.Context(), *p.Actor, id, in); err == nil {
		u.redirect(w, r, idPath(accountsPath, id, "abruf"), "web.flash.saved")
		return
	}
	u.fetchTabAgain(w, r, p, err)
}

// accountOAuthStart is "Verbinden": it starts the sign-in and sends the browser to the
// provider, which returns to the API's callback.
func (u *UI) accountOAuthStart(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	start, err := u.d.Core.StartAccountOAuth(r.Context(), *p.Actor, id, scheme+"://"+r.Host+oauthCallbackPath)
	if err != nil {
		u.fetchTabAgain(w, r, p, err)
		return
	}
	// A link, not a redirect: the Content-Security-Policy's form-action 'self' also covers
	// redirects that answer a form, so browsers would stop a 303 to the provider.
	p.Flash = p.T("web.fetch.continue_hint")
	u.showFetchTabWith(w, r, p, http.StatusOK, start.URL)
}

// fetchTabAgain shows the tab with a refusal (say, OAuth2 not configured by the operator) on
// top; a server fault is the error page.
func (u *UI) fetchTabAgain(w http.ResponseWriter, r *http.Request, p *page, err error) {
	if core.AsError(err).Status >= 500 {
		u.fail(w, r, p, err)
		return
	}
	u.showFetchTab(w, r, p, p.formStatus(err))
}
