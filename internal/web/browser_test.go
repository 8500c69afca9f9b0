package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"postfach/internal/testpeers"
)

// browser is one Chromium with a fresh profile; tabs made by tab() have their own cookies.
type browser struct {
	t    *testing.T
	base string
	root context.Context
}

func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := testpeers.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "de-DE"), chromedp.Flag("accept-lang", "de-DE,de"))
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, base: base, root: bctx}
}

// tab opens a tab in a browser context of its own, so that two users can be logged in at once.
func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	return ctx
}

func (b *browser) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		b.t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

func (b *browser) login(ctx context.Context, tenant, login string) {
	b.t.Helper()
	b.do(ctx, "login "+login,
		chromedp.Navigate(b.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="tenant"]`), tenant),
		chromedp.SendKeys(chromedp.CSS(`input[name="login"]`), login),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), demoPassword),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#logout`)),
	)
}

// screenshot saves the whole page as artifacts/screenshots/<name>.png.
func (b *browser) screenshot(ctx context.Context, name string) []byte {
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return png
}

func senderLabels(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#sender option')).map(o => o.textContent).join('\n')`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBrowserGrantAppearsAndVanishes drives real Chromium through issue 3's story: the admin
// creates a group and an additional mailbox with Absender and Benutzerrechte for that group,
// puts Paul Schneller into the group, Paul sees the mailbox in the Absenderadresse dropdown,
// the admin removes the grant, the mailbox vanishes, and Paul switches to English.
// Set POSTFACH_UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png.
func TestBrowserGrantAppearsAndVanishes(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t, "http://"+e.srv.HTTPAddr)
	const label = "Vertrieb (vertrieb@celanio.example)"

	admin := b.tab()
	b.login(admin, "demo", "admin")
	b.screenshot(admin, "admin")

	// Benutzer und Gruppen: the new group "Vertrieb", still empty.
	b.do(admin, "create group",
		chromedp.Navigate(b.base+"/admin/gruppen/neu"),
		chromedp.SendKeys(chromedp.CSS(`#group-form input[name="name"]`), "Vertrieb"),
		chromedp.Click(chromedp.CSS(`#group-form button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups`)),
	)
	b.screenshot(admin, "users")
	groups, err := e.srv.Core.Groups(e.ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	var groupID int64
	for _, g := range groups {
		if g.Name == "Vertrieb" {
			groupID = g.ID
		}
	}
	if groupID == 0 {
		t.Fatal("group Vertrieb was not created")
	}

	// Zusätzliche Postfächer: "+ E-Mail-Adresse hinzufügen" with Absender and Benutzerrechte.
	b.do(admin, "open mailbox form",
		chromedp.Navigate(b.base+"/admin/postfaecher"),
		chromedp.Click(chromedp.CSS(`#add-mailbox`)),
		chromedp.WaitVisible(chromedp.CSS(`#mailbox-form`)),
		// Without the ticks, the SMTP settings and the user picker are hidden.
		chromedp.WaitNotVisible(chromedp.CSS(`#smtp`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#rights`)),
		chromedp.SendKeys(chromedp.CSS(`#mailbox-form input[name="address"]`), "vertrieb@celanio.example"),
		chromedp.SendKeys(chromedp.CSS(`#mailbox-form input[name="display_name"]`), "Vertrieb"),
		chromedp.Click(chromedp.CSS(`input[name="sender"]`)),
		chromedp.Click(chromedp.CSS(`input[name="reply"]`)),
		chromedp.Click(chromedp.CSS(`input[name="with_auth"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#smtp`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="smtp.host"]`), "smtp.celanio.example"),
		chromedp.SendKeys(chromedp.CSS(`input[name="smtp.username"]`), "vertrieb"),
		chromedp.SendKeys(chromedp.CSS(`input[name="smtp.password"]`), "geheim-und-lang"),
		chromedp.Click(chromedp.CSS(`input[name="restricted"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rights`)),
		chromedp.Click(chromedp.CSS(`#adder-group button[data-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`#adder-group select`)),
		chromedp.SetValue(chromedp.CSS(`#adder-group select`), strconv.FormatInt(groupID, 10)),
	)
	b.screenshot(admin, "mailbox-form")
	b.do(admin, "save mailbox",
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#mailboxes`)),
	)
	list, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS(`#mailboxes`)))
	if err != nil || !strings.Contains(list, "vertrieb@celanio.example") {
		t.Fatalf("mailbox list after save: %q %v", list, err)
	}
	b.screenshot(admin, "mailboxes")

	// Paul is not in the group yet: no Vertrieb for him.
	paul := b.tab()
	b.login(paul, "demo", "pschneller")
	b.do(paul, "compose", chromedp.Navigate(b.base+"/kommunikation"), chromedp.WaitVisible(chromedp.CSS(`#sender`)))
	if got := senderLabels(t, paul); strings.Contains(got, label) {
		t.Fatalf("Paul sees the mailbox before joining the group:\n%s", got)
	}

	// The admin puts Paul into Vertrieb.
	b.do(admin, "add member",
		chromedp.Navigate(b.base+"/admin/gruppen/"+strconv.FormatInt(groupID, 10)),
		chromedp.Click(chromedp.CSS(`input[data-login="pschneller"]`)),
		chromedp.Click(chromedp.CSS(`#group-form button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups`)),
	)

	b.do(paul, "compose again", chromedp.Navigate(b.base+"/kommunikation"), chromedp.WaitVisible(chromedp.CSS(`#sender`)))
	if got := senderLabels(t, paul); !strings.Contains(got, label) {
		t.Fatalf("Paul does not see %q after joining the group:\n%s", label, got)
	}
	b.do(paul, "fill compose",
		chromedp.SetValue(chromedp.CSS(`#sender`), "mailbox:"+strconv.FormatInt(e.mailboxByAddress("vertrieb@celanio.example").ID, 10)),
		chromedp.SendKeys(chromedp.CSS(`input[name="to"]`), "Kunde <kunde@example.com>"),
		chromedp.SendKeys(chromedp.CSS(`input[name="subject"]`), "Ihr Angebot"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name="body_text"]`), "Guten Tag,\n\nanbei unser Angebot."),
	)
	shot := b.screenshot(paul, "compose-de")
	if os.Getenv("POSTFACH_UPDATE_SCREENSHOT") != "" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshot.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.do(paul, "preview", chromedp.Click(chromedp.CSS(`#preview-button`)), chromedp.WaitVisible(chromedp.CSS(`#preview`)))
	b.screenshot(paul, "compose-preview")
	// Senden puts the message into the Postausgang; no worker runs here, so it stays queued.
	b.do(paul, "send", chromedp.Click(chromedp.CSS(`#send`)), chromedp.WaitVisible(chromedp.CSS(`#queue tr.current[data-state="queued"]`)))
	b.screenshot(paul, "queue")

	// The admin removes the grant, through the confirmation page.
	mb := e.mailboxByAddress("vertrieb@celanio.example")
	b.do(admin, "remove grant",
		chromedp.Navigate(b.base+"/admin/postfaecher/"+strconv.FormatInt(mb.ID, 10)),
		chromedp.Click(chromedp.CSS(`#grants a.remove`)),
		chromedp.WaitVisible(chromedp.CSS(`ul.lost`)),
	)
	b.screenshot(admin, "confirm-grant-removal")
	b.do(admin, "confirm", chromedp.Click(chromedp.CSS(`button.danger`)), chromedp.WaitVisible(chromedp.CSS(`#mailbox-form`)))

	b.do(paul, "compose after removal", chromedp.Navigate(b.base+"/kommunikation"), chromedp.WaitVisible(chromedp.CSS(`#sender`)))
	if got := senderLabels(t, paul); strings.Contains(got, label) {
		t.Fatalf("Paul still sees the mailbox after the grant was removed:\n%s", got)
	}

	// English by the switch in the header.
	b.do(paul, "switch to English",
		chromedp.Click(chromedp.CSS(`form.lang button[value="en"]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #sender`)),
	)
	text, err := chromedp.Run(paul, chromedp.Text(chromedp.CSS(`#compose-form`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Sender address", "Reply-to address (optional)", "Subject", "Send"} {
		if !strings.Contains(text, want) {
			t.Errorf("English compose page lacks %q:\n%s", want, text)
		}
	}
	b.screenshot(paul, "compose-en")

	// The operator's tenant list, for the screenshots.
	op := b.tab()
	b.login(op, "", "operator")
	b.do(op, "tenants", chromedp.Navigate(b.base+"/betreiber/mandanten"), chromedp.WaitVisible(chromedp.CSS(`#tenants`)))
	b.screenshot(op, "operator-tenants")
}
