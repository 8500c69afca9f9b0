package web

import (
	"net/http"
	"net/url"
	"strings"

	"postfach/internal/store"
)

// Audit-Log (X4): every permission change, login and send of the tenant, newest first,
// filtered by action and actor.
func (u *UI) auditRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/audit", roleAdmin, u.auditPage)
}

func (u *UI) auditPage(w http.ResponseWriter, r *http.Request, p *page) {
	q := r.URL.Query()
	f := store.AuditFilter{Action: strings.TrimSpace(q.Get("action")), Actor: strings.TrimSpace(q.Get("actor")), Limit: 200}
	entries, err := u.d.Core.Audit(r.Context(), *p.Actor, f)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Form = url.Values{"action": {f.Action}, "actor": {f.Actor}}
	p.Title, p.Nav, p.Data = "web.audit.title", "admin", entries
	u.render(w, r, http.StatusOK, "audit", p)
}
