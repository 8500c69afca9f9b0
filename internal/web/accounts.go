package web

import (
	"net/http"
)

// Mail-Accounts (seed 002, A1): the tenant's accounts with the Status column, switched in
// place; deactivating keeps every message and setting.
func (u *UI) accountRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/mail-accounts", roleAdmin, u.accountList)
	h("POST /admin/mail-accounts/{id}/status", roleAdmin, u.accountStatus)
}

func (u *UI) accountList(w http.ResponseWriter, r *http.Request, p *page) {
	accounts, err := u.d.Core.Accounts(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data = "web.accounts.title", "admin", accounts
	u.render(w, r, http.StatusOK, "accounts", p)
}

func (u *UI) accountStatus(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if _, err := u.d.Core.SetAccountActive(r.Context(), *p.Actor, id, *formBool(r, "active")); err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, "/admin/mail-accounts", "web.flash.saved")
}
