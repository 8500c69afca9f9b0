package web

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/store"
)

// Nachrichten (A5, X3, C3, H7): the messages a user may read, newest first, by mailbox or by
// contact, one message with its headers and body, and the "Nicht zugeordnet" list where a
// user files a message at a contact by hand. Quarantäne (admins): mail that could not be
// parsed, listed, and shown raw as plain text. Which messages a reader sees is core's one
// visibility filter; these pages only render what it returns.
//
// The operator does not read tenants' mail (docs/architecture.md): working in a tenant, the
// operator sees the quarantine's list but no message and no quarantined content; those
// pages explain why instead of answering with a bare "forbidden", and no link leads there.
func (u *UI) messageRoutes(h func(string, role, handlerFunc)) {
	h("GET /nachrichten", roleMail, u.mailReader(u.messageList))
	h("GET /nachrichten/nicht-zugeordnet", roleMail, u.mailReader(u.messageUnassigned))
	h("GET /nachrichten/{id}", roleMail, u.mailReader(u.messageView))
	h("POST /nachrichten/{id}/zuordnen", roleMail, u.mailReader(u.messageFile))
	h("GET /admin/quarantaene", roleAdmin, u.quarantineList)
	h("GET /admin/quarantaene/{id}", roleAdmin, u.mailReader(u.quarantineRaw))
}

// mailReader shows the operator the page that says why mail is not theirs to read.
func (u *UI) mailReader(fn handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *page) {
		if p.IsOperator() {
			u.operatorReadsNoMail(w, r, p)
			return
		}
		fn(w, r, p)
	}
}

func (u *UI) operatorReadsNoMail(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title, p.Nav = "web.operator_mail.title", "messages"
	u.render(w, r, core.ErrOperatorReadsNoMail.Status, "operator_mail", p)
}

const messagesPath = "/nachrichten"

// messagesPage is a list of messages with what narrowed it.
type messagesPage struct {
	List       core.MessageList
	Unassigned bool
	Contact    *store.Contact
	Mailboxes  map[int64]string // id → address, for the mailbox column
	Contacts   []store.Contact  // for filing by hand
	MailboxID  int64
	Next       string // query of the next (older) page, empty on the last
}

// pageSize is how many messages one page shows.
const pageSize = 50

func queryID(r *http.Request, name string) int64 {
	id, err := strconv.ParseInt(r.URL.Query().Get(name), 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

func (u *UI) messageList(w http.ResponseWriter, r *http.Request, p *page) {
	u.showMessages(w, r, p, false)
}

func (u *UI) messageUnassigned(w http.ResponseWriter, r *http.Request, p *page) {
	u.showMessages(w, r, p, true)
}

// showMessages renders one page of the list: ?postfach= narrows to a mailbox, ?kontakt= to
// the messages filed at a contact, ?vor= pages to older messages.
func (u *UI) showMessages(w http.ResponseWriter, r *http.Request, p *page, unassigned bool) {
	in := core.MessageListInput{MailboxID: queryID(r, "postfach"), ContactID: queryID(r, "kontakt"), Unassigned: unassigned,
		Before: queryID(r, "vor"), Limit: pageSize}
	if unassigned {
		in.ContactID = 0
	}
	ctx, a := r.Context(), *p.Actor
	list, err := u.d.Core.Messages(ctx, a, in)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := &messagesPage{List: list, Unassigned: unassigned, MailboxID: in.MailboxID}
	if in.ContactID != 0 {
		c, err := u.d.Core.Contact(ctx, a, in.ContactID)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		d.Contact = &c
	}
	if unassigned {
		if d.Contacts, err = u.d.Core.Contacts(ctx, a); err != nil {
			u.fail(w, r, p, err)
			return
		}
	}
	d.Mailboxes = u.mailboxNames(r, p, list.Messages...)
	if n := len(list.Messages); n == pageSize {
		q := url.Values{}
		if in.MailboxID != 0 {
			q.Set("postfach", strconv.FormatInt(in.MailboxID, 10))
		}
		if in.ContactID != 0 {
			q.Set("kontakt", strconv.FormatInt(in.ContactID, 10))
		}
		q.Set("vor", strconv.FormatInt(list.Messages[n-1].ID, 10))
		d.Next = q.Encode()
	}
	p.Title, p.Nav, p.Data = "web.messages.title", "messages", d
	if unassigned {
		p.Title = "web.messages.unassigned"
	}
	u.render(w, r, http.StatusOK, "messages", p)
}

// messageViewPage is one message: its row, the text body and the sanitised HTML body.
type messageViewPage struct {
	Message  core.MessageDetail
	Text     string
	HTML     template.HTML // sanitised by the outgoing-mail policy: no script, no handlers
	Contact  *store.Contact
	Contacts []store.Contact
	Mailbox  string
}

func (u *UI) messageView(w http.ResponseWriter, r *http.Request, p *page) {
	m, ok := loadByID(u, w, r, p, u.d.Core.Message)
	if !ok {
		return
	}
	u.renderMessage(w, r, p, http.StatusOK, m)
}

func (u *UI) renderMessage(w http.ResponseWriter, r *http.Request, p *page, status int, m core.MessageDetail) {
	ctx, a := r.Context(), *p.Actor
	d := &messageViewPage{Message: m}
	text, htmlBody := messageBody([]byte(m.Raw))
	d.Text = text
	if htmlBody != "" {
		d.HTML = template.HTML(mailout.SanitizeHTML(htmlBody)) // #nosec G203 -- sanitised above
	}
	if m.ContactID != nil {
		if c, err := u.d.Core.Contact(ctx, a, *m.ContactID); err == nil {
			d.Contact = &c
		}
	} else if cs, err := u.d.Core.Contacts(ctx, a); err == nil {
		d.Contacts = cs
	}
	if m.MailboxID != nil {
		d.Mailbox = u.mailboxNames(r, p, m.Message)[*m.MailboxID]
	}
	p.Title, p.Nav, p.Data = "web.messages.message", "messages", d
	u.render(w, r, status, "message", p)
}

// messageFile files a message at the contact whose e-mail address the user chose (A5).
func (u *UI) messageFile(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	ctx, a := r.Context(), *p.Actor
	email := strings.TrimSpace(r.PostForm.Get("contact_email"))
	var contactID int64
	if email != "" {
		contacts, err := u.d.Core.Contacts(ctx, a)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		for _, c := range contacts {
			if strings.EqualFold(c.Email, email) {
				contactID = c.ID
			}
		}
	}
	if contactID == 0 {
		p.Errs["contact_email"] = p.T("web.messages.contact_unknown")
	} else {
		_, err = u.d.Core.FileMessage(ctx, a, id, core.FileInput{ContactID: contactID})
	}
	if err == nil && contactID == 0 {
		m, lerr := u.d.Core.Message(ctx, a, id)
		if lerr != nil {
			u.fail(w, r, p, lerr)
			return
		}
		status := p.formStatus(nil)
		p.Form = r.PostForm
		u.renderMessage(w, r, p, status, m)
		return
	}
	if err == nil {
		target := idPath(messagesPath, id)
		if r.PostForm.Get("back") == "list" {
			target = messagesPath + "/nicht-zugeordnet"
		}
		u.redirect(w, r, target, "web.flash.message_filed")
		return
	}
	m, lerr := u.d.Core.Message(ctx, a, id)
	if lerr != nil {
		u.fail(w, r, p, lerr)
		return
	}
	status := p.formStatus(err)
	p.Form = r.PostForm
	u.renderMessage(w, r, p, status, m)
}

func (u *UI) quarantineList(w http.ResponseWriter, r *http.Request, p *page) {
	showList(u, w, r, p, "web.quarantine.title", "admin", "quarantine", u.d.Core.Quarantine)
}

// quarantineRaw shows the bytes as received, as plain text the browser never interprets.
func (u *UI) quarantineRaw(w http.ResponseWriter, r *http.Request, p *page) {
	raw, ok := loadByID(u, w, r, p, u.d.Core.QuarantinedMessage)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "inline")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(raw)
}

// mailboxNames maps the mailbox ids of the messages shown to addresses for the mailbox
// column. Core names only the mailboxes of messages the reader may read (of the tenant, or
// global), so a user who may not list the tenant's mailboxes sees the addresses of their
// own mail and nothing more; a mailbox it does not name is shown without one.
func (u *UI) mailboxNames(r *http.Request, p *page, msgs ...store.Message) map[int64]string {
	ids := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		if m.MailboxID != nil {
			ids = append(ids, m.ID)
		}
	}
	names, err := u.d.Core.MessageMailboxes(r.Context(), *p.Actor, ids)
	if err != nil {
		u.d.Log.Warn("web: mailbox names", "err", err)
		return map[int64]string{}
	}
	return names
}

// FiledReason translates the stored filing reason (mailstore's Reason constants) for the page.
func (p *page) FiledReason(reason string) string {
	switch {
	case reason == "unassigned":
		return p.T("web.messages.reason_unassigned")
	case reason == "from contact address":
		return p.T("web.messages.reason_contact")
	case strings.HasPrefix(reason, "reply to <") && strings.HasSuffix(reason, ">"):
		return p.T("web.messages.reason_reply", "id", strings.TrimSuffix(strings.TrimPrefix(reason, "reply to <"), ">"))
	case strings.HasPrefix(reason, "filed by hand by "):
		return p.T("web.messages.reason_by_hand", "who", strings.TrimPrefix(reason, "filed by hand by "))
	case reason == "recipient":
		return p.T("web.messages.reason_recipient")
	}
	return reason
}

// maxBodyParts bounds the walk through nested multiparts of a hostile message.
const maxBodyParts = 64

// messageBody finds the first text/plain and text/html parts of a message (RFC 2045,
// RFC 2046 §5.1), decoding base64 and quoted-printable. A message it cannot read gives
// what it found so far; the raw source is always one click away.
func messageBody(raw []byte) (text, html string) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", ""
	}
	parts := 0
	var walk func(h map[string][]string, body io.Reader, depth int)
	walk = func(h map[string][]string, body io.Reader, depth int) {
		parts++
		if parts > maxBodyParts || depth > 8 {
			return
		}
		header := mail.Header(h)
		ctype, params, err := mime.ParseMediaType(header.Get("Content-Type"))
		if err != nil || ctype == "" {
			ctype, params = "text/plain", map[string]string{}
		}
		if strings.HasPrefix(ctype, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				part, err := mr.NextRawPart()
				if err != nil {
					return
				}
				walk(part.Header, part, depth+1)
			}
		}
		if strings.EqualFold(header.Get("Content-Disposition"), "attachment") || strings.HasPrefix(strings.ToLower(header.Get("Content-Disposition")), "attachment;") {
			return
		}
		if (ctype == "text/plain" && text != "") || (ctype == "text/html" && html != "") || (ctype != "text/plain" && ctype != "text/html") {
			return
		}
		var dec io.Reader = body
		switch strings.ToLower(strings.TrimSpace(header.Get("Content-Transfer-Encoding"))) {
		case "base64":
			dec = base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: body})
		case "quoted-printable":
			dec = quotedprintable.NewReader(body)
		}
		b, _ := io.ReadAll(io.LimitReader(dec, 2<<20))
		s := decodeCharset(params["charset"], b)
		if ctype == "text/plain" {
			text = s
		} else {
			html = s
		}
	}
	walk(msg.Header, msg.Body, 0)
	return text, html
}

// decodeCharset turns Latin-1 into UTF-8; other charsets are shown as they are.
func decodeCharset(charset string, b []byte) string {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "iso-8859-15", "windows-1252":
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// newlineStripper drops CR and LF, which base64 bodies carry every 76 characters.
type newlineStripper struct{ r io.Reader }

func (n *newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// MailboxName is the address of a message's mailbox, or a dash when the reader is not told
// which mailbox it is (never its number: that says nothing and invites guessing).
func (d *messagesPage) MailboxName(id *int64) string {
	if id == nil {
		return "–"
	}
	if name, ok := d.Mailboxes[*id]; ok {
		return name
	}
	return "–"
}

// Named reports whether the mailbox column can name (and link) a message's mailbox.
func (d *messagesPage) Named(id *int64) bool {
	if id == nil {
		return false
	}
	_, ok := d.Mailboxes[*id]
	return ok
}
