package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"postfach/internal/core"
	"postfach/internal/store"
)

// The operator area: Mandanten with quota and policies, global mailboxes, and "als Mandant
// arbeiten", which lets the operator use the tenant's Administration pages.
func (u *UI) operatorRoutes(h func(string, role, handlerFunc)) {
	h("GET /betreiber/mandanten", roleOperator, u.tenantList)
	h("GET /betreiber/mandanten/neu", roleOperator, u.tenantNew)
	h("POST /betreiber/mandanten", roleOperator, u.tenantCreate)
	h("GET /betreiber/mandanten/{id}", roleOperator, u.tenantEdit)
	h("POST /betreiber/mandanten/{id}", roleOperator, u.tenantUpdate)
	h("POST /betreiber/mandanten/{id}/arbeiten", roleOperator, u.tenantWorkIn)
	h("POST /betreiber/verlassen", roleOperator, u.tenantLeave)
	h("GET /betreiber/global", roleOperator, u.globalList)
	h("POST /betreiber/mandanten/{id}/postfaecher/{mailbox}/global", roleOperator, u.globalToggle)
}

func (u *UI) tenantList(w http.ResponseWriter, r *http.Request, p *page) {
	showList(u, w, r, p, "web.tenants.title", "tenants", "tenants", u.d.Core.Tenants)
}

type tenantFormData struct {
	Tenant    *store.Tenant
	Mailboxes []store.Mailbox
}

func tenantValues(t store.Tenant) url.Values {
	v := url.Values{"name": {t.Name}, "slug": {t.Slug}, "mailbox_quota": {strconv.Itoa(t.MailboxQuota)}, "duplicate_policy": {t.DuplicatePolicy}}
	if t.AllowOwnAddress {
		v.Set("allow_own_address", "1")
	}
	if t.VIPNoCcBcc {
		v.Set("vip_no_cc_bcc", "1")
	}
	return v
}

func (u *UI) tenantNew(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title, p.Nav, p.Data = "web.tenants.new", "tenants", tenantFormData{}
	p.Form = url.Values{"mailbox_quota": {"1"}, "duplicate_policy": {store.DuplicateUserName}}
	u.render(w, r, http.StatusOK, "tenant_form", p)
}

// tenantInput reads the form; a quota that is no number is a field error of its own.
func tenantInput(r *http.Request, p *page, create bool) core.TenantInput {
	in := core.TenantInput{Name: formStr(r, "name"), AllowOwnAddress: formBool(r, "allow_own_address"),
		DuplicatePolicy: formStr(r, "duplicate_policy"), VIPNoCcBcc: formBool(r, "vip_no_cc_bcc")}
	if q, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("mailbox_quota"))); err == nil {
		in.MailboxQuota = &q
	} else {
		p.Errs["mailbox_quota"] = p.T("error.bad_quota")
	}
	if create {
		in.Slug = formStr(r, "slug")
		if s := strings.TrimSpace(r.PostForm.Get("system_address")); s != "" {
			in.SystemAddress = &s
		}
	}
	return in
}

func (u *UI) tenantCreate(w http.ResponseWriter, r *http.Request, p *page) {
	in := tenantInput(r, p, true)
	p.Form = r.PostForm
	if len(p.Errs) == 0 {
		t, err := u.d.Core.CreateTenant(r.Context(), *p.Actor, in)
		if err == nil {
			u.redirect(w, r, "/betreiber/mandanten/"+strconv.FormatInt(t.ID, 10), "web.flash.saved")
			return
		}
		p.setErr(err)
	} else {
		p.Error = p.T("web.form.has_errors")
	}
	p.Title, p.Nav, p.Data = "web.tenants.new", "tenants", tenantFormData{}
	u.render(w, r, http.StatusUnprocessableEntity, "tenant_form", p)
}

func (u *UI) tenantEditData(r *http.Request, p *page, id int64) (tenantFormData, error) {
	t, err := u.d.Core.Tenant(r.Context(), *p.Actor, id)
	if err != nil {
		return tenantFormData{}, err
	}
	in, _ := core.AsOperatorIn(*p.Actor, id)
	list, err := u.d.Core.Mailboxes(r.Context(), in)
	if err != nil {
		return tenantFormData{}, err
	}
	return tenantFormData{Tenant: &t, Mailboxes: list.Mailboxes}, nil
}

func (u *UI) tenantEdit(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	data, err := u.tenantEditData(r, p, id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data, p.Form = "web.tenants.edit", "tenants", data, tenantValues(*data.Tenant)
	u.render(w, r, http.StatusOK, "tenant_form", p)
}

func (u *UI) tenantUpdate(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	in := tenantInput(r, p, false)
	if len(p.Errs) == 0 {
		if _, err = u.d.Core.UpdateTenant(r.Context(), *p.Actor, id, in); err == nil {
			u.redirect(w, r, "/betreiber/mandanten/"+strconv.FormatInt(id, 10), "web.flash.saved")
			return
		}
	}
	data, derr := u.tenantEditData(r, p, id)
	if derr != nil {
		u.fail(w, r, p, derr)
		return
	}
	status := p.formStatus(err)
	p.Title, p.Nav, p.Data, p.Form = "web.tenants.edit", "tenants", data, r.PostForm
	u.render(w, r, status, "tenant_form", p)
}

func (u *UI) tenantWorkIn(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if _, err := u.d.Core.Tenant(r.Context(), *p.Actor, id); err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: opTenantCookie, Value: strconv.FormatInt(id, 10), Path: "/", HttpOnly: true,
		Secure: !u.d.Auth.InsecureCookies, SameSite: http.SameSiteLaxMode})
	u.redirect(w, r, "/admin", "")
}

func (u *UI) tenantLeave(w http.ResponseWriter, r *http.Request, p *page) {
	http.SetCookie(w, &http.Cookie{Name: opTenantCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	u.redirect(w, r, "/betreiber/mandanten", "")
}

type globalRow struct {
	Mailbox store.Mailbox
	Tenant  string
}

func (u *UI) globalList(w http.ResponseWriter, r *http.Request, p *page) {
	list, err := u.d.Core.GlobalMailboxes(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	tenants, err := u.d.Core.Tenants(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	names := map[int64]string{}
	for _, t := range tenants {
		names[t.ID] = t.Name
	}
	rows := make([]globalRow, 0, len(list))
	for _, m := range list {
		rows = append(rows, globalRow{Mailbox: m, Tenant: names[m.TenantID]})
	}
	p.Title, p.Nav, p.Data = "web.global.title", "global", rows
	u.render(w, r, http.StatusOK, "global", p)
}

// globalToggle ticks or unticks Global on a tenant's mailbox; only the operator may.
func (u *UI) globalToggle(w http.ResponseWriter, r *http.Request, p *page) {
	tid, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	mid, err := pathID(r, "mailbox")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	a, err := core.AsOperatorIn(*p.Actor, tid)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if _, err := u.d.Core.UpdateMailbox(r.Context(), a, mid, core.MailboxInput{Global: formBool(r, "global")}); err != nil {
		u.fail(w, r, p, err)
		return
	}
	back := safeNext(r.PostForm.Get("next"))
	if back == "" {
		back = "/betreiber/mandanten/" + strconv.FormatInt(tid, 10)
	}
	u.redirect(w, r, back, "web.flash.saved")
}
