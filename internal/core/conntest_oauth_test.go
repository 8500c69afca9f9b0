package core

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"postfach/internal/conntest"
	"postfach/internal/netguard"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// TestConnectionTestOAuth2 (C1, C2): the connection test of an Office 365 account signs in
// with the access token of the account's grant, refreshed as the fetcher and the queue do:
// IMAP and POP3 at a Dovecot that checks the token (XOAUTH2), SMTP at a server that offers
// only XOAUTH2. Once the grant is revoked, the test says in the user's language that the
// account must be authorised again instead of reporting a failed login; a stored SMTP
// password then still logs in, as the queue would. A password typed into the form is tested
// as a password.
func TestConnectionTestOAuth2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newAccountsFixture(t, storetest.Open(t), "ctoauth")
	provider := testpeers.StartOAuthProvider(t)
	if err := f.svc.SetOAuthApp(ctx, OAuthApp{Provider: OAuthMicrosoft, ClientID: "client", ClientSecret: "s3cret",
		AuthURL: provider.AuthURL, TokenURL: provider.TokenURL, Scopes: []string{"IMAP.AccessAsUser.All", "SMTP.Send", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	const user = "o365@kunde.example"
	dv := testpeers.StartDovecot(t, map[string]string{user: testpeers.OAuthAccessToken}) // XOAUTH2 checks the token like a password
	smtp := testpeers.StartSMTPServer(t, testpeers.SMTPConfig{Tokens: map[string]string{user: testpeers.OAuthAccessToken}})

	imapHost, imapPort := testpeers.HostPort(t, dv.IMAPAddr)
	_, pop3Port := testpeers.HostPort(t, dv.POP3Addr)
	acc, err := f.svc.CreateAccount(ctx, f.admin, AccountInput{Address: ptrTo(user),
		Receive: &ReceiveInput{Type: ptrTo(ReceiveIMAPO365), Host: ptrTo(imapHost), Port: ptrTo(imapPort), Security: ptrTo("none"), Username: ptrTo(user)},
		Send:    &SMTPInput{Host: ptrTo(smtp.Host), Port: ptrTo(smtp.Port), Security: ptrTo("none"), Auth: ptrTo(true)}})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(id int64) {
		t.Helper()
		start, err := f.svc.StartAccountOAuth(ctx, f.admin, id, "https://postfach.example/api/v1/oauth/callback")
		if err != nil {
			t.Fatal(err)
		}
		state, code := provider.SignIn(t, start.URL)
		if _, err := f.svc.FinishAccountOAuth(ctx, state, code); err != nil {
			t.Fatal(err)
		}
	}
	grant(acc.ID)
	// A second account, granted too, meets the provider down later.
	other, err := f.svc.CreateAccount(ctx, f.admin, AccountInput{Address: ptrTo("zweites@kunde.example"),
		Receive: &ReceiveInput{Type: ptrTo(ReceivePOP3O365), Host: ptrTo(imapHost), Port: ptrTo(pop3Port), Security: ptrTo("none"), Username: ptrTo(user)}})
	if err != nil {
		t.Fatal(err)
	}
	grant(other.ID)

	loopback := ConnTestNetwork{Policy: netguard.Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	testOn := func(a Actor, id int64, in ConnTestInput) ConnTestResult {
		t.Helper()
		r, err := f.svc.TestConnectionOn(ctx, a, &id, in, loopback)
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		return r
	}
	test := func(a Actor, in ConnTestInput) ConnTestResult {
		t.Helper()
		return testOn(a, acc.ID, in)
	}
	granted := []ConnTestInput{
		{Protocol: "receive"},
		{Protocol: "imap"},                        // what the account form sends for an IMAP type
		{Protocol: "pop3", Port: ptrTo(pop3Port)}, // the form switched to POP3 (Office 365), not saved yet
		{Protocol: "smtp"},
	}
	for _, in := range granted {
		if r := test(f.admin, in); !r.OK || r.MessageKey != conntest.KeyOK {
			t.Errorf("%s test with the grant: %+v", in.Protocol, r)
		}
	}
	if r := test(f.admin, ConnTestInput{Protocol: "imap", Password: ptrTo("kennwort")}); r.OK || r.FailedStep != "auth" || r.MessageKey != conntest.KeyAuthFailed {
		t.Errorf("typed password: %+v, want a password login that fails", r)
	}

	// The grant is revoked at the provider; an hour later the token is due for refresh.
	provider.SetRevoked(true)
	f.svc.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	english := f.admin
	english.Lang = "en"
	for _, c := range []struct {
		a    Actor
		in   ConnTestInput
		text string
	}{
		{f.admin, ConnTestInput{Protocol: "receive"}, "„Erneut autorisieren“"},
		{english, ConnTestInput{Protocol: "imap"}, "“Re-authorise”"},
		{f.admin, ConnTestInput{Protocol: "smtp"}, "„Erneut autorisieren“"},
	} {
		r := test(c.a, c.in)
		if r.OK || r.FailedStep != "auth" || r.MessageKey != conntest.KeyAuthReauthorize || !strings.Contains(r.Message, c.text) {
			t.Errorf("%s test with a revoked grant (%s): %+v; want the login step to ask for %s", c.in.Protocol, c.a.Lang, r, c.text)
		}
		// The server was reached; only the login was not attempted.
		if n := len(r.Steps); n < 3 || !r.Steps[n-2].OK || r.Steps[n-1].Step != "auth" {
			t.Errorf("%s steps %+v", c.in.Protocol, r.Steps)
		}
	}
	st, err := f.svc.AccountFetchStatus(ctx, f.admin, acc.ID)
	if err != nil || st.OAuth != "reauthorize" {
		t.Errorf("account after the test met a revoked grant: %+v, %v", st, err)
	}

	// The provider does not answer: the test says the token could not be had, and the grant
	// stays as it was (the fetcher will try again).
	provider.Close()
	second := Actor{Kind: ActorAdmin, TenantID: f.tenant, UserID: 77, Name: "zweite", Lang: "de"} // its own rate-limit budget
	if r := testOn(second, other.ID, ConnTestInput{Protocol: "receive"}); r.OK || r.FailedStep != "auth" || r.MessageKey != conntest.KeyAuthTokenUnavailable {
		t.Errorf("test with the provider down: %+v", r)
	}
	if st, err := f.svc.AccountFetchStatus(ctx, f.admin, other.ID); err != nil || st.OAuth != "ok" {
		t.Errorf("grant after the provider was down: %+v, %v", st, err)
	}

	// A stored SMTP password wins over the grant, as it does when sending.
	pwSMTP := testpeers.StartSMTPServer(t, testpeers.SMTPConfig{Users: map[string]string{user: "smtp-kennwort"}})
	if _, err := f.svc.UpdateAccount(ctx, f.admin, acc.ID, AccountInput{Send: &SMTPInput{Host: ptrTo(pwSMTP.Host), Port: ptrTo(pwSMTP.Port),
		Security: ptrTo("none"), Auth: ptrTo(true), Username: ptrTo(user), Password: ptrTo("smtp-kennwort")}}); err != nil {
		t.Fatal(err)
	}
	if r := test(f.admin, ConnTestInput{Protocol: "smtp"}); !r.OK {
		t.Errorf("SMTP test with a stored password: %+v", r)
	}
}
