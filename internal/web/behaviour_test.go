package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"postfach/internal/core"
)

func TestLoginFailureNamesNoPart(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, form := range []url.Values{
		{"tenant": {"demo"}, "login": {"admin"}, "password": {"wrong-password"}},
		{"tenant": {"demo"}, "login": {"niemand"}, "password": {demoPassword}},
		{"tenant": {"gibtsnicht"}, "login": {"admin"}, "password": {demoPassword}},
	} {
		res := c.post("/login", form)
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "Anmeldung fehlgeschlagen") {
			t.Errorf("%v: status %d", form, res.status)
		}
		// What was typed stays, except the password.
		if !strings.Contains(res.body, `value="`+form.Get("login")+`"`) || strings.Contains(res.body, form.Get("password")) {
			t.Errorf("%v: form not kept or password echoed", form)
		}
	}
}

func TestSessionExpiryLeadsToLogin(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "brenner")
	if res := c.get("/kommunikation"); res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	e.srv.Core.Now = func() time.Time { return time.Now().Add(13 * time.Hour) }
	res := c.get("/kommunikation")
	if res.status != http.StatusSeeOther || !strings.HasPrefix(res.location, "/login?next=%2Fkommunikation&abgelaufen=1") {
		t.Fatalf("expired session: %d %s", res.status, res.location)
	}
	page := c.get(res.location)
	if !strings.Contains(page.body, "Bitte melden Sie sich (erneut) an.") || !strings.Contains(page.body, `value="/kommunikation"`) {
		t.Errorf("login page after expiry:\n%s", page.body)
	}
}

func TestLogoutEndsSession(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "admin")
	token := c.cookies["postfach_session"]
	res := c.postFollow("/logout", nil)
	if !strings.Contains(res.body, "Sie haben sich abgemeldet.") {
		t.Errorf("logout page:\n%s", res.body)
	}
	c.cookies["postfach_session"] = token // replaying the old cookie must not work
	if res := c.get("/admin"); res.status != http.StatusSeeOther {
		t.Errorf("old session after logout: %d", res.status)
	}
}

func TestMailboxFormKeepsInputAndMarksFields(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "admin")
	res := c.post("/admin/postfaecher", url.Values{"address": {"kein-at"}, "display_name": {"Vertrieb Nord"}, "sender": {"1"},
		"with_auth": {"1"}, "smtp.host": {"smtp.example.com:25"}, "smtp.password": {"geheim-123"}})
	if res.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", res.status)
	}
	for _, want := range []string{`value="kein-at"`, `value="Vertrieb Nord"`, `value="smtp.example.com:25"`, "keine gültige E-Mail-Adresse",
		"nur den Servernamen", `aria-invalid="true"`, `name="sender" value="1" checked`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("form lacks %q", want)
		}
	}
	if strings.Contains(res.body, "geheim-123") {
		t.Error("the SMTP password was sent back to the browser")
	}
}

func TestMailboxQuotaMessageNamesQuota(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "admin")
	// The demo tenant may have 5 additional mailboxes and has 2.
	for i, addr := range []string{"a@celanio.example", "b@celanio.example", "c@celanio.example"} {
		if res := c.post("/admin/postfaecher", url.Values{"address": {addr}, "sender": {"1"}, "active": {"1"}}); res.status != http.StatusSeeOther {
			t.Fatalf("mailbox %d: %d\n%s", i, res.status, res.body)
		}
	}
	list := c.get("/admin/postfaecher")
	if !strings.Contains(list.body, "5 von 5 zusätzlichen Postfächern belegt") {
		t.Error("quota line missing")
	}
	res := c.post("/admin/postfaecher", url.Values{"address": {"d@celanio.example"}})
	if res.status != http.StatusConflict || !strings.Contains(res.body, "Ihr Kontingent erlaubt 5 zusätzliche") || !strings.Contains(res.body, `value="d@celanio.example"`) {
		t.Errorf("over quota: %d\n%s", res.status, res.body)
	}
}

func TestPasswordIsWriteOnly(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "admin")
	mb := e.mailboxByAddress("welcome@celanio.example")
	path := "/admin/postfaecher/" + itoa(mb.ID)
	form := url.Values{"address": {mb.Address}, "display_name": {"celanio GmbH"}, "sender": {"1"}, "reply": {"1"}, "active": {"1"},
		"with_auth": {"1"}, "smtp.host": {"smtp.celanio.example"}, "smtp.port": {"587"}, "smtp.security": {"starttls"},
		"smtp.auth": {"1"}, "smtp.username": {"welcome"}, "smtp.password": {"sehr-geheim-42"}}
	if res := c.post(path, form); res.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", res.status, res.body)
	}
	page := c.get(path)
	if strings.Contains(page.body, "sehr-geheim-42") || !strings.Contains(page.body, `placeholder="unverändert"`) {
		t.Error("password shown or placeholder missing")
	}
	// Saving again without typing a password keeps it.
	form.Del("smtp.password")
	if res := c.post(path, form); res.status != http.StatusSeeOther {
		t.Fatalf("save again: %d", res.status)
	}
	m, _ := e.srv.Core.Mailbox(e.ctx, e.admin, mb.ID)
	if pw, err := e.srv.Core.SMTPPassword(m); err != nil || pw != "sehr-geheim-42" {
		t.Errorf("stored password after second save: %q %v", pw, err)
	}
}

func TestDeleteNeedsConfirmationThatSaysWhatIsLost(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "admin")
	mb := e.mailboxByAddress("cel-test08@celanio.example")
	path := "/admin/postfaecher/" + itoa(mb.ID) + "/loeschen"
	page := c.get(path)
	for _, want := range []string{"Das Postfach cel-test08@celanio.example wird gelöscht.",
		"Benutzer der Gruppe „Benutzergruppenverwaltung“ können Benutzergruppenverwaltung (cel-test08@celanio.example) danach nicht mehr als Absender wählen."} {
		if !strings.Contains(page.body, want) {
			t.Errorf("confirmation lacks %q", want)
		}
	}
	if _, err := e.srv.Core.Mailbox(e.ctx, e.admin, mb.ID); err != nil {
		t.Fatal("the confirmation page deleted already")
	}
	if res := c.post(path, nil); res.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", res.status)
	}
	if _, err := e.srv.Core.Mailbox(e.ctx, e.admin, mb.ID); core.AsError(err).Status != http.StatusNotFound {
		t.Errorf("mailbox still there: %v", err)
	}
}

func TestComposeRefusesForgedSenderAndExplains(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "pschneller")
	mb := e.mailboxByAddress("cel-test08@celanio.example")
	page := c.get("/kommunikation")
	if strings.Contains(page.body, "cel-test08@") {
		t.Fatal("pschneller is offered a mailbox restricted to a group he is not in")
	}
	res := c.post("/kommunikation", url.Values{"sender": {"mailbox:" + itoa(mb.ID)}, "to": {"kunde@example.com"}})
	if res.status != http.StatusUnprocessableEntity || strings.Contains(res.body, `id="preview"`) {
		t.Errorf("forged sender accepted: %d", res.status)
	}
	ex := c.get("/kommunikation?erklaeren=cel-test08@celanio.example&rolle=sender")
	if !strings.Contains(ex.body, "auf bestimmte Benutzer und Gruppen beschränkt") {
		t.Errorf("no explanation:\n%s", ex.body)
	}
}

func TestTemplatePreselectsSenderAndReply(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "brenner") // member of the group the template's mailbox is granted to
	tpls, _ := e.srv.Core.Templates(e.ctx, e.admin)
	page := c.get("/kommunikation?vorlage=" + itoa(tpls[0].ID))
	key := tpls[0].SenderKey
	if strings.Count(page.body, `<option value="`+key+`" selected>`) != 2 || !strings.Contains(page.body, `value="Einladung zum Seminar"`) {
		t.Errorf("template not applied:\n%s", page.body)
	}
}

func TestLanguageSwitchSetsCookieAndProfile(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "brenner")
	res := c.post("/sprache", url.Values{"lang": {"en"}, "next": {"/kommunikation"}})
	if res.status != http.StatusSeeOther || res.location != "/kommunikation" || c.cookies["postfach_lang"] != "en" {
		t.Fatalf("switch: %d %s %v", res.status, res.location, c.cookies)
	}
	if !strings.Contains(c.get("/kommunikation").body, "Sender address") {
		t.Error("page not in English")
	}
	if u := e.user("brenner"); u.Lang != "en" {
		t.Errorf("profile language %q", u.Lang)
	}
	// An open redirect through the switch is refused.
	if res := c.post("/sprache", url.Values{"lang": {"de"}, "next": {"//evil.example/"}}); res.location != "/" {
		t.Errorf("next=//evil.example/ redirected to %q", res.location)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPreviewShowsSanitisedHTML(t *testing.T) {
	e := newEnv(t)
	c := e.login("demo", "brenner")
	res := c.post("/kommunikation", url.Values{"sender": {"system"}, "to": {"kunde@example.com"},
		"body_html": {`<p onclick="x()">Hallo <b>Welt</b><script>alert(1)</script></p>`}})
	if res.status != http.StatusOK || !strings.Contains(res.body, "<p>Hallo <b>Welt</b></p>") {
		t.Fatalf("preview: %d\n%s", res.status, res.body)
	}
	_, shown, _ := strings.Cut(res.body, `id="preview"`)
	if strings.Contains(shown, "alert(1)") || strings.Contains(shown, "onclick") {
		t.Error("script survived into the preview")
	}
	if !strings.Contains(res.body, "Barbara Renner<br>celanio GmbH") {
		t.Error("signature with real data missing from the preview")
	}
	sig := c.post("/signaturen", url.Values{"action": {"preview"}, "body_html": {`<p>@Name@, @Telefon@<img src=x onerror=alert(2)></p>`}})
	_, preview, _ := strings.Cut(sig.body, `id="signature-preview"`)
	if !strings.Contains(preview, "Barbara Renner, +49 30 1234567") || strings.Contains(preview, "onerror") {
		t.Errorf("signature preview:\n%s", sig.body)
	}
}
