package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/mailstore"
	"postfach/internal/store"
)

func ptr[T any](v T) *T { return &v }

// TestMessagesInboxFileAndQuarantine walks issue 5's pages as a user and an admin: the
// unassigned mail is listed with its filing reason, its HTML is shown without script, the
// user files it at a contact chosen by e-mail address, the contact's list then holds it
// with the reason naming who filed it; the quarantine shows raw bytes as plain text.
func TestMessagesInboxFileAndQuarantine(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	user := e.login("demo", "brenner")
	admin := e.login("demo", "admin")
	email, name := "kundin@example.org", "Kundin"
	contact, err := e.srv.Core.CreateContact(e.ctx, e.admin, core.ContactInput{Email: &email, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	msgPath := fmt.Sprintf("/nachrichten/%d", f.messageID)

	unassigned := user.get("/nachrichten/nicht-zugeordnet")
	if unassigned.status != 200 || !strings.Contains(unassigned.body, msgPath) || !strings.Contains(unassigned.body, "keinem Kontakt zuzuordnen") {
		t.Fatalf("unassigned list: %d\n%s", unassigned.status, unassigned.body)
	}
	// The first tab lists received and sent mail alike, so it is not called an inbox.
	if all := user.get("/nachrichten"); !strings.Contains(all.body, `id="tab-inbox">Alle Nachrichten</a>`) {
		t.Errorf("messages tab label:\n%s", all.body)
	}
	view := user.get(msgPath)
	for _, want := range []string{"Anfrage", "kunde@example.com", "Grüße", `id="file-form"`} {
		if !strings.Contains(view.body, want) {
			t.Errorf("message view lacks %q", want)
		}
	}
	if strings.Contains(view.body, "<script>alert") || strings.Contains(view.body, `onclick="`) {
		t.Errorf("message view shows unsanitised HTML:\n%s", view.body)
	}

	res := user.post(msgPath+"/zuordnen", url.Values{"contact_email": {"KUNDIN@example.org"}, "back": {"list"}})
	if res.status != 303 || res.location != "/nachrichten/nicht-zugeordnet" {
		t.Fatalf("file: %d %s\n%s", res.status, res.location, res.body)
	}
	if after := user.get("/nachrichten/nicht-zugeordnet"); strings.Contains(after.body, msgPath) {
		t.Error("filed message still listed as unassigned")
	}
	byContact := user.get(fmt.Sprintf("/nachrichten?kontakt=%d", contact.ID))
	if !strings.Contains(byContact.body, msgPath) || !strings.Contains(byContact.body, "von Hand zugeordnet durch") {
		t.Errorf("contact list lacks the filed message:\n%s", byContact.body)
	}
	if v := user.get(msgPath); strings.Contains(v.body, `id="file-form"`) || !strings.Contains(v.body, email) {
		t.Error("filed message still offers filing or lacks its contact")
	}

	q := admin.get("/admin/quarantaene")
	qPath := fmt.Sprintf("/admin/quarantaene/%d", f.quarantineID)
	if !strings.Contains(q.body, qPath) {
		t.Errorf("quarantine list lacks %s", qPath)
	}
	raw := admin.get(qPath)
	if ct := raw.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || raw.header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(raw.body, "kein Kopf") {
		t.Errorf("quarantine raw: %s %q", ct, raw.body)
	}
}

// TestMessagesNameMailboxesForUsers: a user without admin rights sees the address of the
// mailbox a message belongs to, not its number. Only mailboxes of messages the user may read
// are named, and only the tenant's own or global ones: a mailbox of another tenant stays
// unnamed, and a VIP mailbox whose mail the user may not read is never named.
func TestMessagesNameMailboxesForUsers(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	user := e.login("demo", "brenner")
	brenner := core.Actor{Kind: core.ActorUser, TenantID: e.tenant.ID, UserID: e.user("brenner").ID, Name: "brenner"}

	var foreign, global store.Mailbox
	var foreignMsg, globalMsg int64
	err := e.srv.DB.InTx(e.ctx, func(tx *store.Tx) error {
		other, err := tx.CreateTenant(e.ctx, store.Tenant{Name: "Andere", Slug: "andere", MailboxQuota: 5})
		if err != nil {
			return err
		}
		if foreign, err = tx.CreateMailbox(e.ctx, other.ID, store.Mailbox{Kind: store.KindAdditional, Address: "geheim@andere.example", Active: true}); err != nil {
			return err
		}
		if global, err = tx.CreateMailbox(e.ctx, other.ID, store.Mailbox{Kind: store.KindAdditional, Address: "zentrale@andere.example", Global: true, Active: true}); err != nil {
			return err
		}
		// Sent by this tenant from the other tenant's mailboxes (the first one was global
		// when the mail went out); the message is this tenant's, the mailboxes are not.
		for _, x := range []struct {
			mb *store.Mailbox
			id *int64
		}{{&foreign, &foreignMsg}, {&global, &globalMsg}} {
			m, err := tx.InsertMessage(e.ctx, e.tenant.ID, store.Message{MailboxID: &x.mb.ID, Direction: store.DirectionOut, Folder: "Sent",
				MessageID: x.mb.Address + ".1@andere.example", From: x.mb.Address, To: "kunde@example.com", Subject: "Von " + x.mb.Address,
				SHA256: "x", Raw: []byte("Subject: x\r\n\r\nx\r\n"), Status: store.QueueSent})
			if err != nil {
				return err
			}
			*x.id = m.ID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	list := user.get("/nachrichten")
	account := e.mailboxByAddress("info@kunde-eins.example")
	if list.status != 200 || !strings.Contains(list.body, fmt.Sprintf(`<a href="/nachrichten?postfach=%d">info@kunde-eins.example</a>`, account.ID)) {
		t.Fatalf("message list does not name the account's mailbox:\n%s", list.body)
	}
	if strings.Contains(list.body, fmt.Sprintf("#%d", account.ID)) || strings.Contains(list.body, fmt.Sprintf("?postfach=%d", foreign.ID)) {
		t.Error("message list shows a mailbox by its number")
	}
	if strings.Contains(list.body, ">geheim@andere.example<") {
		t.Error("message list names another tenant's mailbox")
	}
	if !strings.Contains(list.body, ">zentrale@andere.example<") {
		t.Error("message list does not name the global mailbox the mail was sent from")
	}
	if view := user.get(fmt.Sprintf("/nachrichten/%d", f.messageID)); !strings.Contains(view.body, ">info@kunde-eins.example</a>") {
		t.Errorf("message view does not name its mailbox:\n%s", view.body)
	}

	// A VIP mailbox the user was never assigned to: its mail is hidden, and so is its name.
	vip, err := e.srv.Core.CreateMailbox(e.ctx, e.admin, core.MailboxInput{Address: ptr("vorstand@celanio.example"), VIP: ptr(true), Active: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	vipMsg, _ := e.deliver(t, vip.ID, "From: a@example.com\r\nTo: vorstand@celanio.example\r\nSubject: Vertraulich\r\nMessage-ID: <v1@example.com>\r\n\r\nx\r\n")
	names, err := e.srv.Core.MessageMailboxes(e.ctx, brenner, []int64{vipMsg, foreignMsg, globalMsg, f.messageID})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := names[vip.ID]; ok || len(names) != 2 || names[global.ID] != "zentrale@andere.example" || names[account.ID] != "info@kunde-eins.example" {
		t.Errorf("names for a user: %v; want the account and the global mailbox only", names)
	}
	// The host application reads the whole tenant: it is told the VIP mailbox's name.
	token := core.Actor{Kind: core.ActorToken, TenantID: e.tenant.ID, Name: "crm"}
	if all, err := e.srv.Core.MessageMailboxes(e.ctx, token, []int64{vipMsg}); err != nil || all[vip.ID] != "vorstand@celanio.example" {
		t.Errorf("names for the API token: %v, %v", all, err)
	}
}

// TestOperatorReadsNoMail: the operator working in a tenant administers it but does not read
// its mail. Message pages and quarantined content answer with a page that says so (not a
// bare "forbidden"), in both languages; no link in the operator's pages leads there.
func TestOperatorReadsNoMail(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	opIn := e.login("", "operator")
	opIn.cookies["postfach_op_tenant"] = fmt.Sprint(f.tenantID)
	op := e.login("", "operator")
	for _, c := range []*client{opIn, op} {
		for _, path := range []string{"/nachrichten", "/nachrichten/nicht-zugeordnet", fmt.Sprintf("/nachrichten/%d", f.messageID),
			fmt.Sprintf("/nachrichten?postfach=%d", f.accountID)} {
			res := c.get(path)
			if res.status != 403 || !strings.Contains(res.body, `id="operator-reads-no-mail"`) || !strings.Contains(res.body, "Datenschutz") {
				t.Errorf("%s: %d\n%s", path, res.status, res.body)
			}
		}
	}
	file := opIn.post(fmt.Sprintf("/nachrichten/%d/zuordnen", f.messageID), url.Values{"contact_email": {"kundin@example.org"}})
	if file.status != 403 || !strings.Contains(file.body, `id="operator-reads-no-mail"`) {
		t.Errorf("filing as operator: %d", file.status)
	}
	raw := opIn.get(fmt.Sprintf("/admin/quarantaene/%d", f.quarantineID))
	if raw.status != 403 || strings.Contains(raw.body, "kein Kopf") || !strings.Contains(raw.body, `id="operator-reads-no-mail"`) {
		t.Errorf("quarantined content for the operator: %d\n%s", raw.status, raw.body)
	}
	opIn.cookies["postfach_lang"] = "en"
	if en := opIn.get("/nachrichten"); !strings.Contains(en.body, "privacy") {
		t.Errorf("English page: %s", en.body)
	}
	delete(opIn.cookies, "postfach_lang")

	// The pages the operator works with offer no way there.
	for _, path := range []string{"/admin", "/admin/quarantaene", "/postausgang", "/admin/mail-accounts", fmt.Sprintf("/admin/mail-accounts/%d", f.accountID)} {
		res := opIn.get(path)
		if res.status != 200 {
			t.Fatalf("%s: %d", path, res.status)
		}
		if strings.Contains(res.body, `href="/nachrichten`) || strings.Contains(res.body, `href="/admin/quarantaene/`) {
			t.Errorf("%s links to mail the operator may not read", path)
		}
	}
	if q := opIn.get("/admin/quarantaene"); !strings.Contains(q.body, `id="quarantine-operator"`) {
		t.Errorf("quarantine list for the operator lacks its hint:\n%s", q.body)
	}
}

// TestMessagesShowSentAndFolder: mail from an account's Sent folder is shown as sent (to its
// recipients, filed because a recipient is a contact); mail imported from another folder,
// such as the trash, carries the folder's name, so it is never taken for the inbox.
func TestMessagesShowSentAndFolder(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	user := e.login("demo", "brenner")
	email := "kundin@example.org"
	if _, err := e.srv.Core.CreateContact(e.ctx, e.admin, core.ContactInput{Email: &email}); err != nil {
		t.Fatal(err)
	}
	mb, err := e.srv.DB.Read().Mailbox(e.ctx, e.tenant.ID, f.accountID)
	if err != nil {
		t.Fatal(err)
	}
	var sentID int64
	err = e.srv.DB.InTx(e.ctx, func(tx *store.Tx) error {
		p := mailstore.Prepare(mailstore.Delivery{Source: "imap", Mailboxes: []store.Mailbox{mb}, Hostname: "postfach.test",
			Raw: []byte("From: info@kunde-eins.example\r\nTo: Kundin <kundin@example.org>\r\nSubject: Angebot aus Outlook\r\nMessage-ID: <outlook-1@kunde-eins.example>\r\n\r\nx\r\n")})
		st, err := mailstore.NewBatch(tx).DeliverSent(e.ctx, p)
		if err != nil {
			return err
		}
		sentID = st.Messages[0].ID
		return tx.SetMessageFolder(e.ctx, e.tenant.ID, f.messageID, "Trash")
	})
	if err != nil {
		t.Fatal(err)
	}
	list := user.get("/nachrichten")
	for _, want := range []string{`<span class="badge sent">Gesendet</span> an Kundin &lt;kundin@example.org&gt;`, `<span class="badge folder">Ordner Trash</span>`, "Empfänger ist ein Kontakt"} {
		if !strings.Contains(list.body, want) {
			t.Errorf("message list lacks %q:\n%s", want, list.body)
		}
	}
	if v := user.get(fmt.Sprintf("/nachrichten/%d", sentID)); !strings.Contains(v.body, `<dd id="direction"><span class="badge sent">Gesendet</span></dd>`) {
		t.Errorf("message view does not show the message as sent:\n%s", v.body)
	}
	if v := user.get(fmt.Sprintf("/nachrichten/%d", f.messageID)); !strings.Contains(v.body, "Empfangen <span class=\"badge folder\">Ordner Trash</span>") {
		t.Errorf("message view does not show the folder:\n%s", v.body)
	}
}
