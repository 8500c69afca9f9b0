package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"postfach/internal/core"
	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// Domains and hosted mailboxes (seed 003; H1–H11): the tenant's domains with the TXT record
// that proves them and the MX/SPF/DKIM/DMARC records to create; the mailbox list with
// Anlegen on a verified domain; the detail view with Postfach aktiv, E-Mail-Name, VIP,
// Zugeordnete Benutzer, Abwesenheitsnotiz, the server names for Outlook and phones,
// Passwort anzeigen (after re-entering one's own password), neues Passwort generieren
// (after a confirmation) and Zugangsdaten versenden.
func (u *UI) hostedRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/domains", roleAdmin, u.domainList)
	h("POST /admin/domains", roleAdmin, u.domainAdd)
	h("POST /admin/domains/{id}/pruefen", roleAdmin, u.domainVerify)
	h("GET /admin/domains/{id}/loeschen", roleAdmin, u.domainDeleteConfirm)
	h("POST /admin/domains/{id}/loeschen", roleAdmin, u.domainDelete)
	h("GET /admin/hosted", roleAdmin, u.hostedList)
	h("POST /admin/hosted", roleAdmin, u.hostedCreate)
	h("GET /admin/hosted/{id}", roleAdmin, u.hostedDetail)
	h("POST /admin/hosted/{id}", roleAdmin, u.hostedSave)
	h("POST /admin/hosted/{id}/abwesenheit", roleAdmin, u.hostedOutOfOffice)
	h("POST /admin/hosted/{id}/passwort", roleAdmin, u.hostedShowPassword)
	h("GET /admin/hosted/{id}/passwort/neu", roleAdmin, u.hostedNewPasswordConfirm)
	h("POST /admin/hosted/{id}/passwort/neu", roleAdmin, u.hostedNewPassword)
	h("POST /admin/hosted/{id}/zugangsdaten", roleAdmin, u.hostedSendCredentials)
}

const (
	domainsPath = "/admin/domains"
	hostedPath  = "/admin/hosted"
)

type domainListData struct {
	Domains []core.DomainView
}

func (u *UI) domainPage(w http.ResponseWriter, r *http.Request, p *page, status int) {
	list, err := u.d.Core.TenantDomains(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data = "web.domains.title", "admin", domainListData{Domains: list}
	u.render(w, r, status, "domains", p)
}

func (u *UI) domainList(w http.ResponseWriter, r *http.Request, p *page) {
	u.domainPage(w, r, p, http.StatusOK)
}

func (u *UI) domainAdd(w http.ResponseWriter, r *http.Request, p *page) {
	if _, err := u.d.Core.AddTenantDomain(r.Context(), *p.Actor, r.PostForm.Get("domain")); err != nil {
		status := p.formStatus(err)
		p.Form = r.PostForm
		u.domainPage(w, r, p, status)
		return
	}
	u.redirect(w, r, domainsPath, "web.flash.domain_added")
}

// domainVerify looks the TXT record up now; the page shows the outcome either way.
func (u *UI) domainVerify(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := loadByID(u, w, r, p, u.d.Core.VerifyTenantDomain)
	if !ok {
		return
	}
	flash := "web.flash.domain_not_verified"
	if d.Verified {
		flash = "web.flash.domain_verified"
	}
	u.redirect(w, r, domainsPath+"#domain-"+strconv.FormatInt(d.ID, 10), flash)
}

func (u *UI) domainDeleteConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := loadByID(u, w, r, p, u.d.Core.TenantDomain)
	if !ok {
		return
	}
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.domains.delete"), Message: p.T("web.domains.delete_message", "domain", d.Domain),
		Lost:   []string{p.T("web.domains.delete_lost", "domain", d.Domain)},
		Action: idPath(domainsPath, d.ID, "loeschen"), Back: domainsPath, Button: p.T("web.delete")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *UI) domainDelete(w http.ResponseWriter, r *http.Request, p *page) {
	u.deleteByID(w, r, p, u.d.Core.DeleteTenantDomain, domainsPath)
}

type hostedListData struct {
	Mailboxes []store.Mailbox
	Domains   []core.DomainView // verified ones: a mailbox can be created only there (H1)
}

func (u *UI) hostedListPage(w http.ResponseWriter, r *http.Request, p *page, status int) {
	list, err := u.d.Core.HostedMailboxes(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	domains, err := u.d.Core.TenantDomains(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := hostedListData{Mailboxes: list}
	for _, dv := range domains {
		if dv.Verified {
			d.Domains = append(d.Domains, dv)
		}
	}
	p.Title, p.Nav, p.Data = "web.hosted.title", "admin", d
	u.render(w, r, status, "hosted", p)
}

func (u *UI) hostedList(w http.ResponseWriter, r *http.Request, p *page) {
	p.Form = url.Values{"active": {"1"}}
	u.hostedListPage(w, r, p, http.StatusOK)
}

// hostedCreate is Anlegen (seed 003: the name of the mailbox on one of the tenant's
// domains). The generated password is shown this once, on the detail page.
func (u *UI) hostedCreate(w http.ResponseWriter, r *http.Request, p *page) {
	local := strings.TrimSpace(r.PostForm.Get("name"))
	address := local + "@" + r.PostForm.Get("domain")
	created, err := u.d.Core.CreateHostedMailbox(r.Context(), *p.Actor, core.HostedInput{Address: &address,
		DisplayName: formStr(r, "display_name"), Active: formBool(r, "active"), VIP: formBool(r, "vip")})
	if err != nil {
		status := p.formStatus(err)
		if msg, ok := p.Errs["address"]; ok {
			p.Errs["name"] = msg
		}
		p.Form = r.PostForm
		u.hostedListPage(w, r, p, status)
		return
	}
	p.Flash = p.T("web.flash.hosted_created")
	u.hostedDetailPage(w, r, p, created.Mailbox.ID, http.StatusCreated, created.Password)
}

// hostedDetailData is the detail view of one hosted mailbox.
type hostedDetailData struct {
	core.HostedDetail
	Grants      []grantRow
	History     []grantRow
	Users       []store.User
	Password    string // shown after creation, re-authentication or regeneration only
	OutOfOffice mailstore.OutOfOffice
}

func oooValues(v url.Values, o mailstore.OutOfOffice) {
	setIf(v, "ooo.enabled", o.Enabled)
	v.Set("ooo.subject", o.Subject)
	v.Set("ooo.text", o.Text)
	if o.PeriodDays != 0 {
		v.Set("ooo.period_days", strconv.Itoa(o.PeriodDays))
	}
	if o.Start != nil {
		v.Set("ooo.start", o.Start.Local().Format(dateTimeLocal))
	}
	if o.End != nil {
		v.Set("ooo.end", o.End.Local().Format(dateTimeLocal))
	}
}

// dateTimeLocal is the value format of <input type="datetime-local">.
const dateTimeLocal = "2006-01-02T15:04"

// hostedDetailPage renders the detail view. Form values already in p.Form (a form shown
// again with errors) win over the stored ones.
func (u *UI) hostedDetailPage(w http.ResponseWriter, r *http.Request, p *page, id int64, status int, password string) {
	det, err := u.d.Core.HostedMailbox(r.Context(), *p.Actor, id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := hostedDetailData{HostedDetail: det, Password: password}
	if d.Users, err = u.d.Core.Users(r.Context(), *p.Actor); err != nil {
		u.fail(w, r, p, err)
		return
	}
	if d.OutOfOffice, err = u.d.Core.OutOfOffice(r.Context(), *p.Actor, id); err != nil {
		u.fail(w, r, p, err)
		return
	}
	names := subjectNames(d.Users, nil)
	for _, g := range det.Grants.Open {
		d.Grants = append(d.Grants, names.row(g))
	}
	for _, g := range det.Grants.History {
		if g.ValidUntil != nil {
			d.History = append(d.History, names.row(g))
		}
	}
	stored := url.Values{"display_name": {det.Mailbox.DisplayName}}
	setIf(stored, "active", det.Mailbox.Active)
	setIf(stored, "vip", det.Mailbox.VIP)
	oooValues(stored, d.OutOfOffice)
	for k, v := range stored {
		if _, typed := p.Form[k]; !typed {
			p.Form[k] = v
		}
	}
	p.Title, p.Nav, p.Data = "web.hosted.detail", "admin", d
	u.render(w, r, status, "hosted_detail", p)
}

func (u *UI) hostedDetail(w http.ResponseWriter, r *http.Request, p *page) {
	if id, err := pathID(r, "id"); err != nil {
		u.fail(w, r, p, err)
	} else {
		u.hostedDetailPage(w, r, p, id, http.StatusOK, "")
	}
}

// hostedSave changes Postfach aktiv, E-Mail-Name and VIP and adds the chosen users.
func (u *UI) hostedSave(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	_, err = u.d.Core.UpdateHostedMailbox(r.Context(), *p.Actor, id, core.HostedInput{DisplayName: formStr(r, "display_name"),
		Active: formBool(r, "active"), VIP: formBool(r, "vip")})
	if err == nil {
		err = u.addGrants(r, p, id)
	}
	if err != nil {
		status := p.formStatus(err)
		p.Form = formWithout(r, "grant_user", "grant_group")
		u.hostedDetailPage(w, r, p, id, status, "")
		return
	}
	u.redirect(w, r, idPath(hostedPath, id), "web.flash.saved")
}

// hostedOutOfOffice saves the Abwesenheitsnotiz; start and end are optional (H3).
func (u *UI) hostedOutOfOffice(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	o := mailstore.OutOfOffice{Enabled: r.PostForm.Get("ooo.enabled") != "", Subject: r.PostForm.Get("ooo.subject"), Text: r.PostForm.Get("ooo.text")}
	o.Start = formTime(r, p, "ooo.start")
	o.End = formTime(r, p, "ooo.end")
	if s := strings.TrimSpace(r.PostForm.Get("ooo.period_days")); s != "" {
		if o.PeriodDays, err = strconv.Atoi(s); err != nil {
			p.Errs["ooo.period_days"] = p.T("web.ooo.period_range")
		}
	}
	err = nil
	if len(p.Errs) == 0 {
		if err = u.d.Core.SetOutOfOffice(r.Context(), *p.Actor, id, o); err == nil {
			u.redirect(w, r, idPath(hostedPath, id)+"#abwesenheit", "web.flash.saved")
			return
		}
	}
	status := p.formStatus(err)
	p.Form = r.PostForm
	u.hostedDetailPage(w, r, p, id, status, "")
}

// formTime reads a datetime-local field in the server's time zone; empty is no time.
func formTime(r *http.Request, p *page, name string) *time.Time {
	s := strings.TrimSpace(r.PostForm.Get(name))
	if s == "" {
		return nil
	}
	t, err := time.ParseInLocation(dateTimeLocal, s, time.Local)
	if err != nil {
		p.Errs[name] = p.T("web.ooo.bad_time")
		return nil
	}
	return &t
}

// hostedShowPassword is Passwort anzeigen: only after the admin typed their own password
// again; core audits every view (H11).
func (u *UI) hostedShowPassword(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	pw, err := u.d.Core.ShowHostedPassword(r.Context(), *p.Actor, id, r.PostForm.Get("own_password"))
	if err != nil {
		status := p.formStatus(err)
		if msg, ok := p.Errs["password"]; ok {
			p.Errs["own_password"] = msg
		}
		u.hostedDetailPage(w, r, p, id, status, "")
		return
	}
	u.hostedDetailPage(w, r, p, id, http.StatusOK, pw)
}

func (u *UI) hostedNewPasswordConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	det, ok := loadByID(u, w, r, p, u.d.Core.HostedMailbox)
	if !ok {
		return
	}
	id := det.Mailbox.ID
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.hosted.new_password"), Message: p.T("web.hosted.new_password_message", "address", det.Mailbox.Address),
		Lost:   []string{p.T("web.hosted.new_password_lost")},
		Action: idPath(hostedPath, id, "passwort", "neu"), Back: idPath(hostedPath, id), Button: p.T("web.hosted.new_password")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

// hostedNewPassword is neues Passwort generieren: the old one stops working at once,
// including open IMAP, POP3 and submission sessions; the new one is shown this once.
func (u *UI) hostedNewPassword(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	pw, err := u.d.Core.RegenerateHostedPassword(r.Context(), *p.Actor, id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Flash = p.T("web.flash.password_regenerated")
	u.hostedDetailPage(w, r, p, id, http.StatusOK, pw)
}

// hostedSendCredentials is Zugangsdaten versenden (H9); the password goes along only when
// ticked, and then only after re-authentication.
func (u *UI) hostedSendCredentials(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	in := core.CredentialsInput{To: strings.TrimSpace(r.PostForm.Get("to")), IncludePassword: r.PostForm.Get("include_password") != "",
		OwnPassword: r.PostForm.Get("credentials_password")}
	if err := u.d.Core.SendHostedCredentials(r.Context(), *p.Actor, id, in); err != nil {
		status := p.formStatus(err)
		if msg, ok := p.Errs["password"]; ok {
			p.Errs["credentials_password"] = msg
			delete(p.Errs, "password")
		}
		p.Form = formWithout(r, "credentials_password", "own_password")
		u.hostedDetailPage(w, r, p, id, status, "")
		return
	}
	u.redirect(w, r, idPath(hostedPath, id), "web.flash.credentials_sent")
}
