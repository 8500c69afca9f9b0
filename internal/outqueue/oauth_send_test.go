package outqueue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/store"
	"postfach/internal/testpeers"
)

// startOAuthProvider registers an in-process token endpoint as the operator's Microsoft
// application.
func (f *fixture) startOAuthProvider(t *testing.T) *testpeers.OAuthProvider {
	t.Helper()
	p := testpeers.StartOAuthProvider(t)
	if err := f.svc.SetOAuthApp(context.Background(), core.OAuthApp{Provider: core.OAuthMicrosoft, ClientID: "client", ClientSecret: "s3cret",
		AuthURL: p.AuthURL, TokenURL: p.TokenURL, Scopes: []string{"SMTP.Send", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// oauthAccount creates an "IMAP (Office 365)" account whose own SMTP server is smtp, with the
// SMTP login switched on and no SMTP user or password, as the form leaves it for these types.
func (f *fixture) oauthAccount(t *testing.T, smtp *smtpServer, receive core.ReceiveInput, folders *core.FolderInput) int64 {
	t.Helper()
	addr, typ, none, yes := "o365@kunde.example", core.ReceiveIMAPO365, "none", true
	receive.Type = &typ
	acc, err := f.svc.CreateAccount(context.Background(), f.admin, core.AccountInput{Address: &addr, Receive: &receive, Folders: folders,
		Send: &core.SMTPInput{Host: &smtp.host, Port: &smtp.port, Security: &none, Auth: &yes}})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	return acc.ID
}

// grant runs the authorisation-code flow the way the browser does: start, then the
// provider's redirect back with the code.
func (f *fixture) grant(t *testing.T, p *testpeers.OAuthProvider, id int64) {
	t.Helper()
	ctx := context.Background()
	start, err := f.svc.StartAccountOAuth(ctx, f.admin, id, "https://postfach.test/api/v1/oauth/callback")
	if err != nil {
		t.Fatal(err)
	}
	state, code := p.SignIn(t, start.URL)
	if _, err := f.svc.FinishAccountOAuth(ctx, state, code); err != nil {
		t.Fatal(err)
	}
}

// grantedAccount is an Office 365 account of user whose grant is in place, sending through
// an SMTP server that takes the refreshed access token for user.
func (f *fixture) grantedAccount(t *testing.T, user string) (*testpeers.OAuthProvider, *smtpServer, int64) {
	t.Helper()
	p := f.startOAuthProvider(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) { s.tokens = map[string]string{user: testpeers.OAuthAccessToken} })
	id := f.oauthAccount(t, ts, oauthHost(user), nil)
	f.grant(t, p, id)
	return p, ts, id
}

// untilNextAttempt moves the clock a second past the delivery's next attempt.
func (f *fixture) untilNextAttempt(d core.Delivery) {
	f.clock.Advance(time.Duration(d.NextAttemptAt-f.clock.Now().UnixMilli())*time.Millisecond + time.Second)
}

func (f *fixture) oauthState(t *testing.T, id int64) core.FetchStatus {
	t.Helper()
	st, err := f.svc.AccountFetchStatus(context.Background(), f.admin, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func oauthHost(user string) core.ReceiveInput {
	host := "127.0.0.1"
	return core.ReceiveInput{Host: &host, Username: &user}
}

// TestOAuthAccountSendsWithRefreshedToken (C2, M4): a message from an Office 365 account
// goes through the account's own SMTP server with AUTH XOAUTH2, as the user who signed in
// and with the access token refreshed just before.
func TestOAuthAccountSendsWithRefreshedToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p, ts, id := f.grantedAccount(t, "anna.o365@kunde.example")

	res := f.send(t, core.SendInput{Sender: "mailbox:" + itoa(id), To: to("kunde@example.org")})
	drain(t, f.queue(ts.route(mailout.SecurityNone)))

	d := f.delivery(t, res.ID)
	if d.State != store.QueueSent {
		t.Fatalf("delivery %+v", d.QueueEntry)
	}
	msgs := ts.messages()
	if len(msgs) != 1 || msgs[0].mech != "XOAUTH2" || msgs[0].user != "anna.o365@kunde.example" {
		t.Fatalf("arrived: %+v", msgs)
	}
	if p.Refreshes() == 0 {
		t.Fatal("the token due for refresh was not refreshed")
	}
	if got := header(msgs[0].data, "message-id"); got != "<"+res.MessageID+">" {
		t.Errorf("Message-ID %q", got)
	}
}

// TestOAuthRevokedGrantWaitsForReauthorisation: a grant the provider revoked puts the
// account into the re-authorise state; the message is deferred with a reason that says what
// to do, the provider is not asked again, and after a new sign-in the message goes out.
func TestOAuthRevokedGrantWaitsForReauthorisation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p, ts, id := f.grantedAccount(t, "o365@kunde.example")
	p.SetRevoked(true)
	q := f.queue(ts.route(mailout.SecurityNone))

	res := f.send(t, core.SendInput{Sender: "mailbox:" + itoa(id), To: to("kunde@example.org")})
	drain(t, q)
	d := f.delivery(t, res.ID)
	want := f.svc.Text.T("de", "error.send.oauth_reauthorize", map[string]string{"address": "o365@kunde.example"})
	if d.State != store.QueueDeferred || d.LastError != want || !strings.Contains(d.StateText, want) {
		t.Fatalf("revoked grant: state %s, last error %q, text %q", d.State, d.LastError, d.StateText)
	}
	if !strings.Contains(want, "erneut autorisiert") || !strings.Contains(want, "o365@kunde.example") {
		t.Fatalf("reason %q", want)
	}
	if st := f.oauthState(t, id); st.OAuth != store.OAuthReauthorize || !strings.Contains(st.OAuthError, "invalid_grant") {
		t.Fatalf("account state %+v", st)
	}
	if len(ts.messages()) != 0 {
		t.Fatal("a message went out without a login")
	}

	// The next attempt finds the account waiting for a sign-in and leaves the provider alone.
	refreshes := p.Refreshes()
	f.untilNextAttempt(d)
	drain(t, q)
	if d = f.delivery(t, res.ID); d.State != store.QueueDeferred || d.Attempts != 2 || p.Refreshes() != refreshes {
		t.Fatalf("second attempt: %+v, provider asked %d times more", d.QueueEntry, p.Refreshes()-refreshes)
	}

	p.SetRevoked(false)
	f.grant(t, p, id)
	f.untilNextAttempt(d)
	drain(t, q)
	if d = f.delivery(t, res.ID); d.State != store.QueueSent {
		t.Fatalf("after the new sign-in: %+v", d.QueueEntry)
	}
	if msgs := ts.messages(); len(msgs) != 1 || msgs[0].mech != "XOAUTH2" {
		t.Fatalf("arrived: %+v", msgs)
	}
}

// TestOAuthProviderUnreachableIsRetried: when the refresh fails on the network the grant is
// not touched and the message is retried; it goes out once the provider answers again. The
// reason is in the sender's language, here English.
func TestOAuthProviderUnreachableIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	en := "en"
	if _, err := f.svc.UpdateUser(context.Background(), f.admin, f.user.UserID, core.UserInput{Lang: &en}); err != nil {
		t.Fatal(err)
	}
	p, ts, id := f.grantedAccount(t, "o365@kunde.example")
	q := f.queue(ts.route(mailout.SecurityNone))
	p.SetDown(true)

	res := f.send(t, core.SendInput{Sender: "mailbox:" + itoa(id), To: to("kunde@example.org")})
	drain(t, q)
	d := f.delivery(t, res.ID)
	if d.State != store.QueueDeferred || !strings.Contains(d.LastError, "could not be renewed") || !strings.Contains(d.LastError, "o365@kunde.example") {
		t.Fatalf("provider down: %+v", d.QueueEntry)
	}
	if st := f.oauthState(t, id); st.OAuth != store.OAuthOK {
		t.Fatalf("a network failure changed the grant: %+v", st)
	}

	p.SetDown(false)
	f.untilNextAttempt(d)
	drain(t, q)
	if d = f.delivery(t, res.ID); d.State != store.QueueSent || len(ts.messages()) != 1 {
		t.Fatalf("after the provider is back: %+v", d.QueueEntry)
	}
}

// TestOAuthAccountWithSMTPPasswordKeepsIt: an Office 365 account that has an SMTP password
// (basic authentication switched on at the customer's tenant) keeps logging in with it.
func TestOAuthAccountWithSMTPPasswordKeepsIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.startOAuthProvider(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) { s.users = map[string]string{"o365@kunde.example": "smtp-geheim"} })
	id := f.oauthAccount(t, ts, oauthHost("o365@kunde.example"), nil)
	pw := "smtp-geheim"
	if _, err := f.svc.UpdateAccount(context.Background(), f.admin, id, core.AccountInput{Send: &core.SMTPInput{Password: &pw}}); err != nil {
		t.Fatal(err)
	}
	res := f.send(t, core.SendInput{Sender: "mailbox:" + itoa(id), To: to("kunde@example.org")})
	drain(t, f.queue(ts.route(mailout.SecurityNone)))
	if d := f.delivery(t, res.ID); d.State != store.QueueSent {
		t.Fatalf("delivery %+v", d.QueueEntry)
	}
	if msgs := ts.messages(); len(msgs) != 1 || msgs[0].mech != "PLAIN" || msgs[0].user != "o365@kunde.example" {
		t.Fatalf("arrived: %+v", msgs)
	}
}

// TestOAuthSentCopyInDovecot (C9 with C2): the copy in the Sent folder of an Office 365
// account logs in to IMAP with XOAUTH2. Dovecot checks the bearer token against the user's
// passwd-file entry, so the copy succeeds only with the refreshed token.
func TestOAuthSentCopyInDovecot(t *testing.T) {
	t.Parallel()
	dc := testpeers.StartDovecot(t, map[string]string{"anna": testpeers.OAuthAccessToken})
	f := newFixture(t)
	p := f.startOAuthProvider(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) { s.tokens = map[string]string{"anna": testpeers.OAuthAccessToken} })
	host, port := testpeers.HostPort(t, dc.IMAPAddr)
	sec, user, sent, yes := "starttls", "anna", "Gesendet", true
	id := f.oauthAccount(t, ts, core.ReceiveInput{Host: &host, Port: &port, Security: &sec, Username: &user},
		&core.FolderInput{Sent: &sent, CopyToSent: &yes})
	f.grant(t, p, id)
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) {
		c.SentCopy = &outqueue.IMAPSentCopy{Core: f.svc, RootCAs: dc.CA.Pool()}
	})

	res := f.send(t, core.SendInput{Sender: "mailbox:" + itoa(id), To: to("kunde@example.org")})
	drain(t, q)
	if d := f.delivery(t, res.ID); d.State != store.QueueSent || d.SentCopy != "done" {
		t.Fatalf("delivery %+v", d.QueueEntry)
	}
	out := dc.Doveadm(t, "fetch", "-u", "anna", "flags hdr.message-id", "mailbox", sent)
	if !strings.Contains(out, res.MessageID) || !strings.Contains(out, `\Seen`) {
		t.Fatalf("Sent folder holds:\n%s", out)
	}

	// A token the server does not accept: the message is sent, the copy fails.
	dc.SetPassword(t, "anna", "another-token")
	res = f.send(t, core.SendInput{Sender: "mailbox:" + itoa(id), To: to("kunde@example.org")})
	drain(t, q)
	if d := f.delivery(t, res.ID); d.State != store.QueueSent || !strings.HasPrefix(d.SentCopy, "failed: sent copy: login") {
		t.Fatalf("copy with a refused token: %+v", d.QueueEntry)
	}
}
