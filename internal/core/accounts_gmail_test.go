package core

import (
	"context"
	"net/http"
	"testing"

	"postfach/internal/store/storetest"
)

// TestGmailReceiveTypes (C2): the Gmail types sign in at Google and, left without a server,
// fetch from Google's IMAP or POP3 endpoint over implicit TLS; a host the user gives wins.
func TestGmailReceiveTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newAccountsFixture(t, storetest.Open(t), "acme")
	cases := []struct {
		name, typ, host string
		wantHost        string
		wantPort        int
		wantSecurity    string
		provider        string
	}{
		{"imap default server", ReceiveIMAPGmail, "", "imap.gmail.com", 993, "tls", OAuthGoogle},
		{"pop3 default server", ReceivePOP3Gmail, "", "pop.gmail.com", 995, "tls", OAuthGoogle},
		{"imap own host", ReceiveIMAPGmail, "imap.example.org", "imap.example.org", 143, "none", OAuthGoogle},
		{"office 365 unchanged", ReceiveIMAPO365, "outlook.office365.example", "outlook.office365.example", 143, "none", OAuthMicrosoft},
	}
	for _, c := range cases {
		acc := f.create(t, "gmail-"+c.typ+"-"+itoa(len(c.host))+"@kunde.example")
		in := AccountInput{Receive: &ReceiveInput{Type: ptrTo(c.typ), Username: ptrTo("kunde@gmail.example")}}
		if c.host != "" {
			in.Receive.Host = ptrTo(c.host)
		}
		got, err := f.svc.UpdateAccount(ctx, f.admin, acc.ID, in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		r := got.Receive
		if r.Type != c.typ || r.Host != c.wantHost || r.Port != c.wantPort || r.Security != c.wantSecurity {
			t.Errorf("%s: receive %+v", c.name, r)
		}
		if p := OAuthProviderFor(c.typ); p != c.provider {
			t.Errorf("%s: provider %q, want %q", c.name, p, c.provider)
		}
	}
	// A Gmail account still needs the user it signs in as.
	acc := f.create(t, "gmail-nouser@kunde.example")
	_, err := f.svc.UpdateAccount(ctx, f.admin, acc.ID, AccountInput{Receive: &ReceiveInput{Type: ptrTo(ReceivePOP3Gmail)}})
	if statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("gmail without user: err %v, want 422", err)
	}
}
