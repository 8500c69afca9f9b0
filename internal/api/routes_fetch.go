package api

import (
	"fmt"
	"net/http"
	"strings"

	"postfach/internal/core"
)

// FetchNowInput asks for a fetch run; SyncFolders also refreshes the server's folder list (C10).
type FetchNowInput struct {
	SyncFolders bool `json:"sync_folders"`
}

// FolderImportInput chooses which server folders are imported.
type FolderImportInput struct {
	Folders []core.FolderImport `json:"folders"`
}

// OAuthStartInput optionally names the callback URL as the browser reaches this server;
// without it the request's own scheme and host are used.
type OAuthStartInput struct {
	RedirectURL string `json:"redirect_url,omitempty"`
}

const oauthCallbackPath = "/api/v1/oauth/callback"

// fetchRoutes are the fetching endpoints of mail accounts (C1, C2, C9, C10). Runs happen on
// whichever instance leases the account, so "fetch now" and "synchronise folders" answer
// 202 with pending: true, and the status shows the outcome.
func (a *API) fetchRoutes() []Route {
	s := a.core
	rt := func(method, path, summary string, status int, in, out any, handle func(*http.Request, core.Actor) (any, error)) Route {
		return Route{Method: method, Path: path, Tag: "accounts", Summary: summary, Status: status, In: in, Out: out, handle: handle}
	}
	return []Route{
		rt("GET", "/api/v1/accounts/{id}/fetch", "Fetch status of an account: last run, error, server folders, suggested drafts/trash/sent mapping, OAuth2 state", 200, nil, core.FetchStatus{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.FetchStatus, error) {
				return s.AccountFetchStatus(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/accounts/{id}/fetch", "Fetch now; with sync_folders also synchronise the server's folder list", 202, FetchNowInput{}, core.FetchStatus{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in FetchNowInput) (core.FetchStatus, error) {
				return s.FetchAccountNow(r.Context(), a, id, in.SyncFolders)
			})),
		rt("PUT", "/api/v1/accounts/{id}/folders", "Choose which synchronised server folders are imported", 200, FolderImportInput{}, core.FetchStatus{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in FolderImportInput) (core.FetchStatus, error) {
				return s.SetAccountFolderImport(r.Context(), a, id, in.Folders)
			})),
		rt("POST", "/api/v1/accounts/{id}/oauth/start", "Start the OAuth2 sign-in of an Office 365 account: returns the provider URL to open", 200, OAuthStartInput{}, core.OAuthStart{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in OAuthStartInput) (core.OAuthStart, error) {
				redirect := in.RedirectURL
				if redirect == "" {
					scheme := "http"
					if r.TLS != nil {
						scheme = "https"
					}
					redirect = scheme + "://" + r.Host + oauthCallbackPath
				}
				return s.StartAccountOAuth(r.Context(), a, id, redirect)
			})),
		{Method: "GET", Path: oauthCallbackPath, Tag: "accounts", Public: true, Status: 200, Query: []string{"state", "code"}, Out: core.OAuthDone{},
			Summary: "The provider's redirect after an OAuth2 sign-in; the one-use state authenticates it",
			handle: func(r *http.Request, _ core.Actor) (any, error) {
				q := r.URL.Query()
				done, err := s.FinishAccountOAuth(r.Context(), q.Get("state"), q.Get("code"))
				if err != nil {
					return nil, err
				}
				// A browser coming back from the provider lands on the account's Abruf tab;
				// API clients get the JSON answer.
				if strings.Contains(r.Header.Get("Accept"), "text/html") {
					return redirectTo(fmt.Sprintf("/admin/mail-accounts/%d/abruf", done.AccountID)), nil
				}
				return done, nil
			}},
	}
}
