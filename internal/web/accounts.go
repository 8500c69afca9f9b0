package web

import (
	"net/http"

	"postfach/internal/core"
	"postfach/internal/store"
)

// Mail-Accounts (seed 002, A1): the tenant's accounts with the Status column, switched in
// place; deactivating keeps every message and setting.
func (u *UI) accountRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/mail-accounts", roleAdmin, u.accountList)
	h("POST /admin/mail-accounts/{id}/status", roleAdmin, u.accountStatus)
}

func (u *UI) accountList(w http.ResponseWriter, r *http.Request, p *page) {
	list, err := u.d.Core.Mailboxes(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	accounts := []store.Mailbox{}
	for _, m := range list.Mailboxes {
		if m.Kind == store.KindAccount {
			accounts = append(accounts, m)
		}
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
	m, err := u.d.Core.Mailbox(r.Context(), *p.Actor, id)
	if err == nil && m.Kind != store.KindAccount {
		err = &core.Error{Status: http.StatusNotFound, Key: "error.not_found"}
	}
	if err == nil {
		_, err = u.d.Core.UpdateMailbox(r.Context(), *p.Actor, id, core.MailboxInput{Active: formBool(r, "active")})
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, "/admin/mail-accounts", "web.flash.saved")
}
