package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"postfach/internal/core"
)

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
