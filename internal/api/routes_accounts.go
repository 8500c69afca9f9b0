package api

import (
	"net/http"

	"postfach/internal/core"
	"postfach/internal/store"
)

// ActiveInput switches an account on or off (the list's status column).
type ActiveInput struct {
	Active bool `json:"active"`
}

// accountsRoutes are the mail-account endpoints (seed 002, 004): every one takes the
// account id from the path and resolves it inside the caller's tenant, so a foreign id is 404.
func (a *API) accountsRoutes() []Route {
	s := a.core
	rt := func(method, path, summary string, status int, in, out any, handle func(*http.Request, core.Actor) (any, error)) Route {
		return Route{Method: method, Path: path, Tag: "accounts", Summary: summary, Status: status, In: in, Out: out, handle: handle}
	}
	return []Route{
		rt("GET", "/api/v1/accounts", "List mail accounts with status, p-addresses, message count and SPF column", 200, nil, []core.Account{},
			get(func(r *http.Request, a core.Actor) ([]core.Account, error) { return s.Accounts(r.Context(), a) })),
		rt("POST", "/api/v1/accounts", "Create a mail account (address, sender name, active; receive and send settings optional)", 201, core.AccountInput{}, core.Account{},
			h(func(r *http.Request, a core.Actor, in core.AccountInput) (core.Account, error) {
				return s.CreateAccount(r.Context(), a, in)
			})),
		rt("POST", "/api/v1/accounts/connection-test", "Test unsaved receive or send settings (rate-limited per user)", 200, core.ConnTestInput{}, core.ConnTestResult{},
			h(func(r *http.Request, a core.Actor, in core.ConnTestInput) (core.ConnTestResult, error) {
				return s.TestConnection(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/accounts/{id}", "Read a mail account (passwords never: has_password only)", 200, nil, core.Account{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.Account, error) {
				return s.Account(r.Context(), a, id)
			}))),
		rt("PATCH", "/api/v1/accounts/{id}", "Change a mail account; passwords are write-only", 200, core.AccountInput{}, core.Account{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.AccountInput) (core.Account, error) {
				return s.UpdateAccount(r.Context(), a, id, in)
			})),
		rt("PUT", "/api/v1/accounts/{id}/active", "Activate or deactivate a mail account; all data is kept", 200, ActiveInput{}, core.Account{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in ActiveInput) (core.Account, error) {
				return s.SetAccountActive(r.Context(), a, id, in.Active)
			})),
		rt("GET", "/api/v1/accounts/{id}/delete-preview", "What deleting the account deletes and keeps (journal-filed mail), with the confirmation token", 200, nil, core.DeletePreview{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.DeletePreview, error) {
				return s.AccountDeletePreview(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/accounts/{id}/delete", "Delete the account with the preview's confirmation token", 200, core.DeleteAccountInput{}, store.AccountMessageCounts{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.DeleteAccountInput) (store.AccountMessageCounts, error) {
				return s.DeleteAccount(r.Context(), a, id, in.Confirm)
			})),
		{Method: "GET", Path: "/api/v1/accounts/{id}/merge-preview", Tag: "accounts", Summary: "What merging the account into target_id moves (Zusammenführen), with the confirmation token",
			Status: 200, Query: []string{"target_id"}, Out: core.MergePreview{}, handle: get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.MergePreview, error) {
				target, err := queryID(r, "target_id")
				if err != nil {
					return core.MergePreview{}, err
				}
				return s.AccountMergePreview(r.Context(), a, id, target)
			}))},
		rt("POST", "/api/v1/accounts/{id}/merge", "Merge the account into target_id in one transaction and delete it", 200, core.MergeInput{}, store.MergeResult{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.MergeInput) (store.MergeResult, error) {
				return s.MergeAccounts(r.Context(), a, id, in)
			})),
		rt("GET", "/api/v1/accounts/{id}/domain", "Domainkonfiguration: the last SPF, MX, DKIM and DMARC check of the account's domain", 200, nil, core.DomainReport{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.DomainReport, error) {
				return s.AccountDomainReport(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/accounts/{id}/domain-check", "Check the account's domain again now (the result follows within seconds)", 202, nil, core.DomainReport{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.DomainReport, error) {
				return s.RequestDomainCheck(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/accounts/{id}/connection-test", "Test the account's receive or send settings, stored or as typed (rate-limited per user)", 200, core.ConnTestInput{}, core.ConnTestResult{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.ConnTestInput) (core.ConnTestResult, error) {
				return s.TestAccountConnection(r.Context(), a, id, in)
			})),
	}
}

func queryID(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, &core.Error{Status: http.StatusUnprocessableEntity, Key: "error.required", Field: name, Params: map[string]string{"field": name}}
	}
	r2 := r.Clone(r.Context())
	r2.SetPathValue(name, v)
	return pathID(r2, name)
}
