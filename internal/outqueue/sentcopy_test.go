package outqueue_test

import (
	"context"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/store"
	"postfach/internal/testpeers"
)

// TestCopyToSentInDovecot sends from a mail account whose IMAP settings ask for a copy in
// the mapped Sent folder (C9): after delivery the message is in that folder, flagged \Seen.
func TestCopyToSentInDovecot(t *testing.T) {
	t.Parallel()
	dc := testpeers.StartDovecot(t, map[string]string{"anna": "imap-geheim"})
	f := newFixture(t)
	ctx := context.Background()
	host, port := testpeers.HostPort(t, dc.IMAPAddr)
	addr, typ, sec, user, pw, sent, yes := "anna@kunde.example", core.ReceiveIMAP, "starttls", "anna", "imap-geheim", "Gesendet", true
	acc, err := f.svc.CreateAccount(ctx, f.admin, core.AccountInput{Address: &addr,
		Receive: &core.ReceiveInput{Type: &typ, Host: &host, Port: &port, Security: &sec, Username: &user, Password: &pw},
		Folders: &core.FolderInput{Sent: &sent, CopyToSent: &yes}})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	ts := startServer(t, plain, nil, nil)
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) {
		c.SentCopy = &outqueue.IMAPSentCopy{Core: f.svc, RootCAs: dc.CA.Pool()}
	})
	res := f.send(t, core.SendInput{Sender: "mailbox:" + itoa(acc.ID), To: to("kunde@example.org")})
	drain(t, q)
	d := f.delivery(t, res.ID)
	if d.State != store.QueueSent || d.SentCopy != "done" {
		t.Fatalf("delivery %+v", d.QueueEntry)
	}
	out := dc.Doveadm(t, "fetch", "-u", "anna", "flags hdr.message-id", "mailbox", sent)
	if !strings.Contains(out, res.MessageID) || !strings.Contains(out, `\Seen`) {
		t.Fatalf("Sent folder holds:\n%s", out)
	}
}
