package web

import (
	"crypto/rand"
	"html/template"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"postfach/internal/core"
	"postfach/internal/policy"
	"postfach/internal/signature"
	"postfach/internal/store"
)

// Kommunikationsmanager (M1, M3): compose with the Absenderadresse and Antwortadresse
// dropdowns the policy engine fills, Vorlagen that preselect both, and the policy engine's
// answer to "why is this address not offered?".
func (u *UI) composeRoutes(h func(string, role, handlerFunc)) {
	h("GET /kommunikation", roleUser, u.composePage)
	h("POST /kommunikation", roleUser, u.composeSubmit)
	h("GET /postausgang", roleTenant, u.queuePage)
}

type composeData struct {
	Options   policy.Options
	Templates []store.Template
	Template  *store.Template
	Explain   *core.Explanation
	Preview   *composePreview
}

// composePreview is the message as it would go out.
type composePreview struct {
	From, ReplyTo  string
	To, Cc, Bcc    []string
	Subject        string
	Text           string
	HTML           template.HTML // sanitised by the signature policy; the CSP forbids script anyway
	Signature      signature.Rendered
	SignatureHTML  template.HTML // sanitised by core
	TransportLabel string
}

func (u *UI) composeData(r *http.Request, p *page) (composeData, error) {
	var d composeData
	var err error
	if d.Options, err = u.d.Core.SenderOptions(r.Context(), *p.Actor, p.Actor.UserID); err != nil {
		return d, err
	}
	if d.Templates, err = u.d.Core.Templates(r.Context(), *p.Actor); err != nil {
		return d, err
	}
	return d, nil
}

func (u *UI) composePage(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := u.composeData(r, p)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	q := r.URL.Query()
	// A fresh idempotency key per compose page: sending the same form twice (a double
	// click, a reload after a lost answer) queues the message once.
	p.Form = url.Values{"idem": {rand.Text()}}
	for _, k := range []string{"sender", "reply", "to", "cc", "bcc", "subject"} {
		if v := q.Get(k); v != "" {
			p.Form.Set(k, v)
		}
	}
	if id, err := strconv.ParseInt(q.Get("vorlage"), 10, 64); err == nil {
		t, err := u.d.Core.Template(r.Context(), *p.Actor, id)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		d.Template = &t
		p.Form.Set("vorlage", strconv.FormatInt(t.ID, 10))
		// A template preselects sender and reply-to only among what this user may use (M3).
		if _, ok := policy.Find(d.Options.Senders, t.SenderKey); ok {
			p.Form.Set("sender", t.SenderKey)
		}
		if _, ok := policy.Find(d.Options.Replies, t.ReplyKey); ok {
			p.Form.Set("reply", t.ReplyKey)
		}
		p.Form.Set("subject", t.Subject)
		p.Form.Set("body_text", t.BodyText)
		p.Form.Set("body_html", t.BodyHTML)
	}
	status := http.StatusOK
	if addr := strings.TrimSpace(q.Get("erklaeren")); addr != "" {
		p.Form.Set("erklaeren", addr)
		rl := policy.RoleSender
		if q.Get("rolle") == string(policy.RoleReply) {
			rl = policy.RoleReply
		}
		p.Form.Set("rolle", string(rl))
		ex, err := u.d.Core.ExplainSender(r.Context(), *p.Actor, p.Actor.UserID, addr, rl)
		if err != nil {
			status = p.setErr(err)
			if msg := p.Errs["address"]; msg != "" {
				p.Errs["erklaeren"] = msg
				p.Error = ""
			}
		} else {
			d.Explain = &ex
		}
	}
	p.Title, p.Nav, p.Data = "web.compose.title", "compose", d
	u.render(w, r, status, "compose", p)
}

// addressList parses a To/Cc/Bcc field; names are allowed ("Name <a@b>"), line breaks not.
func addressList(p *page, field, value string, required bool) []string {
	value = strings.TrimSpace(value)
	if value == "" {
		if required {
			p.Errs[field] = p.T("error.required")
		}
		return nil
	}
	if strings.ContainsAny(value, "\r\n") {
		p.Errs[field] = p.T("error.control_chars")
		return nil
	}
	list, err := mail.ParseAddressList(value)
	if err != nil {
		p.Errs[field] = p.T("error.bad_address", "value", value)
		return nil
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		if !core.ValidAddress(a.Address) {
			p.Errs[field] = p.T("error.bad_address", "value", a.Address)
			return nil
		}
		out = append(out, a.String())
	}
	return out
}

func (u *UI) composeSubmit(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := u.composeData(r, p)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	f := r.PostForm
	p.Form = f
	pv := &composePreview{Subject: strings.TrimSpace(f.Get("subject")), Text: f.Get("body_text")}
	// The server accepts only an option the policy engine offers this user (M1): a forged
	// form value is refused exactly like an address that is not in the dropdown.
	sender, ok := policy.Find(d.Options.Senders, f.Get("sender"))
	if !ok {
		p.Errs["sender"] = p.T("error.bad_option", "value", f.Get("sender"))
	} else {
		pv.From = sender.Label
		pv.TransportLabel = p.T("web.compose.transport_" + string(sender.Transport))
	}
	if key := f.Get("reply"); key != "" {
		if reply, ok := policy.Find(d.Options.Replies, key); ok {
			pv.ReplyTo = reply.Label
		} else {
			p.Errs["reply"] = p.T("error.bad_option", "value", key)
		}
	}
	pv.To = addressList(p, "to", f.Get("to"), true)
	pv.Cc = addressList(p, "cc", f.Get("cc"), false)
	pv.Bcc = addressList(p, "bcc", f.Get("bcc"), false)
	if strings.IndexFunc(pv.Subject, unicode.IsControl) >= 0 {
		p.Errs["subject"] = p.T("error.control_chars")
	}
	status := http.StatusOK
	if len(p.Errs) > 0 {
		p.Error = p.T("web.form.has_errors")
		status = http.StatusUnprocessableEntity
	} else if f.Get("action") == "send" {
		// Send goes through core, which asks the policy engine again and commits the message
		// with its queue row before answering (M1, X2).
		res, err := u.d.Core.Send(r.Context(), *p.Actor, sendInput(f))
		if err == nil {
			u.redirect(w, r, "/postausgang?nachricht="+strconv.FormatInt(res.ID, 10), "web.flash.queued")
			return
		}
		status = p.formStatus(err)
		for from, to := range map[string]string{"reply_to": "reply", "text": "body_text", "html": "body_html", "body": "body_text"} {
			if msg, ok := p.Errs[from]; ok {
				p.Errs[to] = msg
				delete(p.Errs, from)
			}
		}
	} else {
		// Sanitised HTML is shown as HTML: the user sees what the recipient will see.
		pv.HTML = template.HTML(u.d.Core.SanitizeHTML(f.Get("body_html")))
		if sig, err := u.d.Core.SignaturePreview(r.Context(), *p.Actor, p.Actor.UserID, nil); err == nil {
			pv.Signature = sig
			pv.SignatureHTML = template.HTML(sig.HTML) // core renders signatures through the same sanitiser
		}
		d.Preview = pv
	}
	p.Title, p.Nav, p.Data = "web.compose.title", "compose", d
	u.render(w, r, status, "compose", p)
}

// sendInput is the compose form as a core send; the addresses were checked by addressList.
func sendInput(f url.Values) core.SendInput {
	in := core.SendInput{Sender: f.Get("sender"), ReplyTo: f.Get("reply"), Subject: strings.TrimSpace(f.Get("subject")),
		Text: f.Get("body_text"), HTML: f.Get("body_html"), IdempotencyKey: f.Get("idem")}
	in.TemplateID, _ = strconv.ParseInt(f.Get("vorlage"), 10, 64)
	in.To, in.Cc, in.Bcc = sendAddresses(f.Get("to")), sendAddresses(f.Get("cc")), sendAddresses(f.Get("bcc"))
	return in
}

func sendAddresses(value string) []core.SendAddress {
	if strings.TrimSpace(value) == "" {
		return nil
	}
	list, err := mail.ParseAddressList(value)
	if err != nil {
		return nil
	}
	out := make([]core.SendAddress, 0, len(list))
	for _, a := range list {
		out = append(out, core.SendAddress{Name: a.Name, Address: a.Address})
	}
	return out
}

// queueStates are the filters of the Postausgang, in the order a message passes them.
var queueStates = []string{store.QueueQueued, store.QueueSending, store.QueueDeferred, store.QueueSent, store.QueueFailed, store.QueueRefused}

type queueData struct {
	Items    []core.QueueItem
	States   []string
	Selected int64 // the message just sent, highlighted
}

// queuePage is the Postausgang (X2): every message with its state — queued, sending, sent,
// deferred with the next attempt and the last error, failed, refused by policy. Users see
// their own sends, admins the tenant's.
func (u *UI) queuePage(w http.ResponseWriter, r *http.Request, p *page) {
	q := r.URL.Query()
	state := strings.TrimSpace(q.Get("state"))
	items, err := u.d.Core.Queue(r.Context(), *p.Actor, core.QueueInput{State: state, Limit: 200})
	status := http.StatusOK
	if err != nil {
		if len(core.FieldErrors(err)) == 0 {
			u.fail(w, r, p, err)
			return
		}
		status = p.setErr(err)
	}
	d := queueData{Items: items, States: queueStates}
	d.Selected, _ = strconv.ParseInt(q.Get("nachricht"), 10, 64)
	p.Form = url.Values{"state": {state}}
	p.Title, p.Nav, p.Data = "web.queue.title", "queue", d
	u.render(w, r, status, "queue", p)
}
