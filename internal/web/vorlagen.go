package web

import (
	"net/http"
	"net/url"
	"strconv"

	"postfach/internal/core"
	"postfach/internal/policy"
	"postfach/internal/store"
)

// Vorlagen (M3): templates with a preselected sender and reply-to.
func (u *UI) templateRoutes(h func(string, role, handlerFunc)) {
	h("GET /vorlagen", roleAdmin, u.templateList)
	h("GET /vorlagen/neu", roleAdmin, u.templateNew)
	h("POST /vorlagen", roleAdmin, u.templateCreate)
	h("GET /vorlagen/{id}", roleAdmin, u.templateEdit)
	h("POST /vorlagen/{id}", roleAdmin, u.templateUpdate)
	h("GET /vorlagen/{id}/loeschen", roleAdmin, u.templateDeleteConfirm)
	h("POST /vorlagen/{id}/loeschen", roleAdmin, u.templateDelete)
}

// keyChoice is one entry of the preselection dropdowns.
type keyChoice struct {
	Key, Label string
}

type templateData struct {
	Templates []store.Template
	Template  *store.Template
	Senders   []keyChoice
	Replies   []keyChoice
	Labels    map[string]string
}

// templateChoices lists every option key of the tenant: the system mailbox, the user's own
// address, and each mailbox by its flags. Whether a user may use it is decided when they do.
func (u *UI) templateChoices(r *http.Request, p *page) (templateData, error) {
	d := templateData{Labels: map[string]string{}}
	list, err := u.d.Core.Mailboxes(r.Context(), *p.Actor)
	if err != nil {
		return d, err
	}
	own := keyChoice{Key: policy.KeyOwn, Label: p.T("web.templates.own_address")}
	d.Senders, d.Replies = append(d.Senders, own), append(d.Replies, own)
	d.Labels[own.Key] = own.Label
	for _, m := range append(list.Mailboxes, list.Global...) {
		c := keyChoice{Key: policy.MailboxKey(m.ID), Label: policy.Label(m.DisplayName, m.Address)}
		if m.Kind == store.KindSystem {
			c.Key = policy.KeySystem
		}
		d.Labels[c.Key] = c.Label
		if m.Sender || m.Kind == store.KindSystem {
			d.Senders = append(d.Senders, c)
		}
		if m.Reply || m.Kind == store.KindSystem {
			d.Replies = append(d.Replies, c)
		}
	}
	return d, nil
}

func (u *UI) templateList(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := u.templateChoices(r, p)
	if err == nil {
		d.Templates, err = u.d.Core.Templates(r.Context(), *p.Actor)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data = "web.templates.title", "templates", d
	u.render(w, r, http.StatusOK, "templates", p)
}

func (u *UI) templateForm(w http.ResponseWriter, r *http.Request, p *page, status int, t *store.Template) {
	d, err := u.templateChoices(r, p)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d.Template = t
	p.Title, p.Nav, p.Data = "web.templates.new", "templates", d
	if t != nil {
		p.Title = "web.templates.edit"
	}
	u.render(w, r, status, "template_form", p)
}

func templateInput(r *http.Request) core.TemplateInput {
	return core.TemplateInput{Name: formStr(r, "name"), Subject: formStr(r, "subject"), BodyText: formStr(r, "body_text"),
		BodyHTML: formStr(r, "body_html"), SenderKey: formStr(r, "sender_key"), ReplyKey: formStr(r, "reply_key")}
}

func (u *UI) templateNew(w http.ResponseWriter, r *http.Request, p *page) {
	p.Form = url.Values{"sender_key": {policy.KeySystem}}
	u.templateForm(w, r, p, http.StatusOK, nil)
}

func (u *UI) templateCreate(w http.ResponseWriter, r *http.Request, p *page) {
	_, err := u.d.Core.CreateTemplate(r.Context(), *p.Actor, templateInput(r))
	if err == nil {
		u.redirect(w, r, "/vorlagen", "web.flash.saved")
		return
	}
	status := p.setErr(err)
	p.Form = r.PostForm
	u.templateForm(w, r, p, status, nil)
}

func (u *UI) loadTemplate(w http.ResponseWriter, r *http.Request, p *page) (store.Template, bool) {
	id, err := pathID(r, "id")
	if err == nil {
		var t store.Template
		if t, err = u.d.Core.Template(r.Context(), *p.Actor, id); err == nil {
			return t, true
		}
	}
	u.fail(w, r, p, err)
	return store.Template{}, false
}

func (u *UI) templateEdit(w http.ResponseWriter, r *http.Request, p *page) {
	t, ok := u.loadTemplate(w, r, p)
	if !ok {
		return
	}
	p.Form = url.Values{"name": {t.Name}, "subject": {t.Subject}, "body_text": {t.BodyText}, "body_html": {t.BodyHTML},
		"sender_key": {t.SenderKey}, "reply_key": {t.ReplyKey}}
	u.templateForm(w, r, p, http.StatusOK, &t)
}

func (u *UI) templateUpdate(w http.ResponseWriter, r *http.Request, p *page) {
	t, ok := u.loadTemplate(w, r, p)
	if !ok {
		return
	}
	_, err := u.d.Core.UpdateTemplate(r.Context(), *p.Actor, t.ID, templateInput(r))
	if err == nil {
		u.redirect(w, r, "/vorlagen", "web.flash.saved")
		return
	}
	status := p.setErr(err)
	p.Form = r.PostForm
	u.templateForm(w, r, p, status, &t)
}

func (u *UI) templateDeleteConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	t, ok := u.loadTemplate(w, r, p)
	if !ok {
		return
	}
	id := strconv.FormatInt(t.ID, 10)
	p.Title, p.Nav = "web.confirm.title", "templates"
	p.Data = confirmData{Heading: p.T("web.templates.delete"), Message: p.T("web.confirm.template_deleted", "name", t.Name),
		Lost: []string{p.T("web.confirm.template_lost")}, Action: "/vorlagen/" + id + "/loeschen", Back: "/vorlagen/" + id, Button: p.T("web.delete")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *UI) templateDelete(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err == nil {
		err = u.d.Core.DeleteTemplate(r.Context(), *p.Actor, id)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, "/vorlagen", "web.flash.deleted")
}
