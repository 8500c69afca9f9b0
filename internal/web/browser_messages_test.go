package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"postfach/internal/store"
)

// TestBrowserMessageList opens Nachrichten as a user without admin rights in real Chromium:
// received mail names the account it came in through (not a number), sent mail is marked as
// sent, and the operator who opens a message gets the page that explains why not.
func TestBrowserMessageList(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	account := e.mailboxByAddress("info@kunde-eins.example")
	err := e.srv.DB.InTx(e.ctx, func(tx *store.Tx) error {
		_, err := tx.InsertMessage(e.ctx, e.tenant.ID, store.Message{MailboxID: &account.ID, Direction: store.DirectionOut, Folder: "Sent",
			MessageID: "antwort-1@kunde-eins.example", From: account.Address, To: "kunde@example.com", Subject: "Ihre Anfrage", SentAt: time.Now().UnixMilli(),
			SHA256: "s", Raw: []byte("Subject: Ihre Anfrage\r\n\r\nx\r\n"), Status: store.QueueSent})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t, "http://"+e.srv.HTTPAddr)
	ctx := b.tab()
	b.login(ctx, "demo", "brenner")
	b.do(ctx, "open Nachrichten",
		chromedp.Navigate(b.base+"/nachrichten"),
		chromedp.WaitVisible(chromedp.CSS(`main table`)),
	)
	list, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Anfrage", "Ihre Anfrage", "info@kunde-eins.example", "Gesendet"} {
		if !strings.Contains(list, want) {
			t.Errorf("Nachrichten does not show %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, "#"+itoa(account.ID)) {
		t.Errorf("Nachrichten shows the mailbox by its number:\n%s", list)
	}
	b.screenshot(ctx, "nachrichten-benutzer")

	op := b.tab()
	b.login(op, "", "operator")
	b.do(op, "operator opens a message",
		chromedp.Navigate(b.base+"/nachrichten/"+itoa(f.messageID)),
		chromedp.WaitVisible(chromedp.CSS(`main`)),
	)
	refusal, err := chromedp.Run(op, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(refusal, "Grüße") || !strings.Contains(strings.ToLower(refusal), "betreiber") {
		t.Errorf("the operator's message page does not explain the refusal or shows the mail:\n%s", refusal)
	}
	b.screenshot(op, "nachrichten-betreiber")
}
