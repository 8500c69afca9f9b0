package web

import (
	"net/http"
	"net/url"
	"strconv"

	"postfach/internal/core"
	"postfach/internal/store"
)

// Administration → Basisdaten → Kunden-Stammdaten: Zusätzliche Postfächer (seed 000, M4, M5).
func (u *UI) mailboxRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin", roleAdmin, u.adminHome)
	h("GET /admin/postfaecher", roleAdmin, u.mailboxList)
	h("GET /admin/postfaecher/neu", roleAdmin, u.mailboxNew)
	h("POST /admin/postfaecher", roleAdmin, u.mailboxCreate)
	h("GET /admin/postfaecher/{id}", roleAdmin, u.mailboxEdit)
	h("POST /admin/postfaecher/{id}", roleAdmin, u.mailboxUpdate)
	h("GET /admin/postfaecher/{id}/loeschen", roleAdmin, u.mailboxDeleteConfirm)
	h("POST /admin/postfaecher/{id}/loeschen", roleAdmin, u.mailboxDelete)
	h("GET /admin/postfaecher/{id}/rechte/{grant}/entfernen", roleAdmin, u.grantEndConfirm)
	h("POST /admin/postfaecher/{id}/rechte/{grant}/entfernen", roleAdmin, u.grantEnd)
}

func (u *UI) adminHome(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title, p.Nav = "web.admin.title", "admin"
	u.render(w, r, http.StatusOK, "admin", p)
}

// mailboxListData is the list page: the tenant's system and additional mailboxes, the global
// mailboxes of other tenants, and the quota as "x von y".
type mailboxListData struct {
	Own    []store.Mailbox
	Global []store.Mailbox
	Quota  int
	Used   int
}

func (u *UI) mailboxList(w http.ResponseWriter, r *http.Request, p *page) {
	list, err := u.d.Core.Mailboxes(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := mailboxListData{Global: list.Global, Quota: list.Quota, Used: list.Used}
	for _, m := range list.Mailboxes {
		if m.Kind == store.KindSystem || m.Kind == store.KindAdditional {
			d.Own = append(d.Own, m)
		}
	}
	p.Title, p.Nav, p.Data = "web.mailboxes.title", "admin", d
	u.render(w, r, http.StatusOK, "mailboxes", p)
}

// grantRow is one current Benutzerrecht with the name of its user or group.
type grantRow struct {
	Grant   store.Grant
	IsGroup bool
	Name    string
}

type mailboxFormData struct {
	Mailbox *store.Mailbox
	Users   []store.User
	Groups  []store.Group
	Grants  []grantRow
	History []grantRow
}

func (u *UI) mailboxFormData(r *http.Request, p *page, m *store.Mailbox) (mailboxFormData, error) {
	d := mailboxFormData{Mailbox: m}
	var err error
	if d.Users, err = u.d.Core.Users(r.Context(), *p.Actor); err != nil {
		return d, err
	}
	if d.Groups, err = u.d.Core.Groups(r.Context(), *p.Actor); err != nil {
		return d, err
	}
	if m == nil {
		return d, nil
	}
	gl, err := u.d.Core.Grants(r.Context(), *p.Actor, m.ID)
	if err != nil {
		return d, err
	}
	names := subjectNames(d.Users, d.Groups)
	for _, g := range gl.Open {
		d.Grants = append(d.Grants, names.row(g))
	}
	for _, g := range gl.History {
		if g.ValidUntil != nil {
			d.History = append(d.History, names.row(g))
		}
	}
	return d, nil
}

type subjects struct{ users, groups map[int64]string }

func subjectNames(users []store.User, groups []store.Group) subjects {
	s := subjects{users: map[int64]string{}, groups: map[int64]string{}}
	for _, x := range users {
		s.users[x.ID] = x.DisplayName + " (" + x.Login + ")"
	}
	for _, g := range groups {
		s.groups[g.ID] = g.Name
	}
	return s
}

func (s subjects) row(g store.Grant) grantRow {
	if g.GroupID != nil {
		return grantRow{Grant: g, IsGroup: true, Name: nameOr(s.groups[*g.GroupID], "#"+strconv.FormatInt(*g.GroupID, 10))}
	}
	if g.UserID != nil {
		return grantRow{Grant: g, Name: nameOr(s.users[*g.UserID], "#"+strconv.FormatInt(*g.UserID, 10))}
	}
	return grantRow{Grant: g}
}

func nameOr(name, fallback string) string {
	if name == "" {
		return fallback
	}
	return name
}

func mailboxValues(m store.Mailbox) url.Values {
	v := url.Values{"address": {m.Address}, "display_name": {m.DisplayName}, "smtp.host": {m.SMTP.Host},
		"smtp.security": {m.SMTP.Security}, "smtp.username": {m.SMTP.Username}}
	if m.SMTP.Port != 0 {
		v.Set("smtp.port", strconv.Itoa(m.SMTP.Port))
	}
	for name, on := range map[string]bool{"reply": m.Reply, "sender": m.Sender, "global": m.Global, "with_auth": m.WithAuth,
		"restricted": m.Restricted, "active": m.Active, "vip": m.VIP, "smtp.auth": m.SMTP.Auth} {
		if on {
			v.Set(name, "1")
		}
	}
	return v
}

func (u *UI) mailboxNew(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := u.mailboxFormData(r, p, nil)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data = "web.mailboxes.new", "admin", d
	p.Form = url.Values{"active": {"1"}, "smtp.security": {"starttls"}, "smtp.auth": {"1"}}
	u.render(w, r, http.StatusOK, "mailbox_form", p)
}

// mailboxInput reads the form. The password is write-only: empty keeps the stored one, and
// only the "remove password" box clears it.
func mailboxInput(r *http.Request, p *page, system bool) core.MailboxInput {
	in := core.MailboxInput{DisplayName: formStr(r, "display_name"), Reply: formBool(r, "reply"), Sender: formBool(r, "sender"),
		WithAuth: formBool(r, "with_auth"), Restricted: formBool(r, "restricted"), VIP: formBool(r, "vip")}
	if !system {
		in.Address = formStr(r, "address")
		in.Active = formBool(r, "active")
	}
	if p.IsOperator() {
		in.Global = formBool(r, "global")
	}
	in.SMTP = smtpInput(r, p, "smtp.")
	return in
}

// smtpInput reads the SMTP fields of a form whose names start with prefix ("smtp." on the
// Zusätzliche Postfächer form, "send." on the Mail-Accounts settings).
func smtpInput(r *http.Request, p *page, prefix string) *core.SMTPInput {
	smtp := &core.SMTPInput{Host: formStr(r, prefix+"host"), Security: formStr(r, prefix+"security"), Auth: formBool(r, prefix+"auth"),
		Username: formStr(r, prefix+"username"), Port: formPort(r, p, prefix+"port"), Password: formSecret(r, prefix+"password")}
	if *smtp.Security == "" {
		smtp.Security = nil
	}
	return smtp
}

// addGrants applies the "+ Benutzer hinzufügen" and "+ Benutzer-Gruppe hinzufügen" choices.
func (u *UI) addGrants(r *http.Request, p *page, mailboxID int64) error {
	for _, id := range ids(r.PostForm["grant_user"]) {
		if _, err := u.d.Core.AddGrant(r.Context(), *p.Actor, mailboxID, core.GrantInput{UserID: &id}); err != nil {
			return err
		}
	}
	for _, id := range ids(r.PostForm["grant_group"]) {
		if _, err := u.d.Core.AddGrant(r.Context(), *p.Actor, mailboxID, core.GrantInput{GroupID: &id}); err != nil {
			return err
		}
	}
	return nil
}

func (u *UI) mailboxCreate(w http.ResponseWriter, r *http.Request, p *page) {
	in := mailboxInput(r, p, false)
	var err error
	if len(p.Errs) == 0 {
		var m store.Mailbox
		if m, err = u.d.Core.CreateMailbox(r.Context(), *p.Actor, in); err == nil {
			if err = u.addGrants(r, p, m.ID); err == nil {
				u.redirect(w, r, "/admin/postfaecher", "web.flash.saved")
				return
			}
			// The mailbox exists; show its page with the grant problem.
			u.redirect(w, r, "/admin/postfaecher/"+strconv.FormatInt(m.ID, 10), "web.flash.grant_failed")
			return
		}
	}
	d, derr := u.mailboxFormData(r, p, nil)
	if derr != nil {
		u.fail(w, r, p, derr)
		return
	}
	status := p.formStatus(err)
	p.Title, p.Nav, p.Data, p.Form = "web.mailboxes.new", "admin", d, formWithout(r, "smtp.password")
	u.render(w, r, status, "mailbox_form", p)
}

func (u *UI) loadMailbox(w http.ResponseWriter, r *http.Request, p *page) (store.Mailbox, bool) {
	return loadByID(u, w, r, p, u.d.Core.Mailbox)
}

func (u *UI) mailboxEdit(w http.ResponseWriter, r *http.Request, p *page) {
	m, ok := u.loadMailbox(w, r, p)
	if !ok {
		return
	}
	d, err := u.mailboxFormData(r, p, &m)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data, p.Form = "web.mailboxes.edit", "admin", d, mailboxValues(m)
	u.render(w, r, http.StatusOK, "mailbox_form", p)
}

func (u *UI) mailboxUpdate(w http.ResponseWriter, r *http.Request, p *page) {
	m, ok := u.loadMailbox(w, r, p)
	if !ok {
		return
	}
	in := mailboxInput(r, p, m.Kind == store.KindSystem)
	var err error
	if len(p.Errs) == 0 {
		if m, err = u.d.Core.UpdateMailbox(r.Context(), *p.Actor, m.ID, in); err == nil {
			if err = u.addGrants(r, p, m.ID); err == nil {
				u.redirect(w, r, "/admin/postfaecher/"+strconv.FormatInt(m.ID, 10), "web.flash.saved")
				return
			}
		}
	}
	d, derr := u.mailboxFormData(r, p, &m)
	if derr != nil {
		u.fail(w, r, p, derr)
		return
	}
	status := p.formStatus(err)
	p.Title, p.Nav, p.Data, p.Form = "web.mailboxes.edit", "admin", d, formWithout(r, "smtp.password")
	u.render(w, r, status, "mailbox_form", p)
}

// confirmData is the confirmation page of a destructive action: what happens, what is lost.
type confirmData struct {
	Heading string
	Message string
	Lost    []string
	Kept    []string // what survives, said as plainly as what is lost
	Action  string
	Get     bool // a first confirmation that leads to a second page
	Hidden  []hiddenField
	Back    string
	Button  string
}

type hiddenField struct{ Name, Value string }

// lostAccess says who loses a mailbox as sender or reply-to when it or its grant goes.
func lostAccess(p *page, m store.Mailbox, grants []grantRow) []string {
	name := m.Address
	if m.DisplayName != "" {
		name = m.DisplayName + " (" + m.Address + ")"
	}
	if !m.Restricted {
		return []string{p.T("web.confirm.lost_everyone", "mailbox", name)}
	}
	var out []string
	for _, g := range grants {
		if g.IsGroup {
			out = append(out, p.T("web.confirm.lost_group", "group", g.Name, "mailbox", name))
		} else {
			out = append(out, p.T("web.confirm.lost_user", "user", g.Name, "mailbox", name))
		}
	}
	return out
}

func (u *UI) mailboxDeleteConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	m, ok := u.loadMailbox(w, r, p)
	if !ok {
		return
	}
	d, err := u.mailboxFormData(r, p, &m)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	id := strconv.FormatInt(m.ID, 10)
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.mailboxes.delete"), Message: p.T("web.confirm.mailbox_deleted", "mailbox", m.Address),
		Lost: lostAccess(p, m, d.Grants), Action: "/admin/postfaecher/" + id + "/loeschen", Back: "/admin/postfaecher/" + id, Button: p.T("web.delete")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *UI) mailboxDelete(w http.ResponseWriter, r *http.Request, p *page) {
	u.deleteByID(w, r, p, u.d.Core.DeleteMailbox, "/admin/postfaecher")
}

func (u *UI) grantEndConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	m, ok := u.loadMailbox(w, r, p)
	if !ok {
		return
	}
	gid, err := pathID(r, "grant")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d, err := u.mailboxFormData(r, p, &m)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	var row *grantRow
	for i := range d.Grants {
		if d.Grants[i].Grant.ID == gid {
			row = &d.Grants[i]
		}
	}
	if row == nil {
		u.fail(w, r, p, &core.Error{Status: http.StatusNotFound, Key: "error.not_found"})
		return
	}
	id := strconv.FormatInt(m.ID, 10)
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.grants.remove"), Message: p.T("web.confirm.grant_removed", "name", row.Name, "mailbox", m.Address),
		Lost: lostAccess(p, m, []grantRow{*row}), Action: "/admin/postfaecher/" + id + "/rechte/" + strconv.FormatInt(gid, 10) + "/entfernen",
		Back: mailboxHome(m), Button: p.T("web.grants.remove")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *UI) grantEnd(w http.ResponseWriter, r *http.Request, p *page) {
	m, ok := u.loadMailbox(w, r, p)
	if !ok {
		return
	}
	gid, err := pathID(r, "grant")
	if err == nil {
		err = u.d.Core.EndGrant(r.Context(), *p.Actor, m.ID, gid)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, mailboxHome(m), "web.flash.grant_removed")
}

// mailboxHome is the page a mailbox is edited on: hosted mailboxes have their own.
func mailboxHome(m store.Mailbox) string {
	if m.Kind == store.KindHosted {
		return idPath(hostedPath, m.ID)
	}
	return idPath("/admin/postfaecher", m.ID)
}
