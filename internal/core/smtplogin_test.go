package core

import (
	"testing"

	"postfach/internal/mailout"
	"postfach/internal/store"
)

// TestSMTPLogin pins the one rule the outbound queue and the connection test share for
// logging in to an account's own SMTP server.
func TestSMTPLogin(t *testing.T) {
	o365 := `{"receive":{"type":"` + ReceiveIMAPO365 + `"}`
	cases := []struct {
		name         string
		settings     string
		hasPassword  bool
		wantMethod   mailout.AuthMethod
		wantProvider string
	}{
		{"no settings", "", false, mailout.AuthPlain, ""},
		{"unreadable settings", "{", false, mailout.AuthPlain, ""},
		{"login chosen", `{"smtp_auth_method":"login"}`, true, mailout.AuthLogin, ""},
		{"OAuth2 type without a password uses its grant", o365 + `}`, false, mailout.AuthXOAuth2, OAuthMicrosoft},
		{"OAuth2 type with a stored password keeps it", o365 + `}`, true, mailout.AuthPlain, ""},
		{"OAuth2 type, plain chosen", o365 + `,"smtp_auth_method":"plain"}`, false, mailout.AuthPlain, ""},
		{"xoauth2 chosen with a password stored", o365 + `,"smtp_auth_method":"xoauth2"}`, true, mailout.AuthXOAuth2, OAuthMicrosoft},
		{"xoauth2 chosen without an OAuth2 type", `{"smtp_auth_method":"xoauth2"}`, false, mailout.AuthPlain, ""},
	}
	for _, c := range cases {
		m := store.Mailbox{Settings: c.settings}
		m.SMTP.HasPassword = c.hasPassword
		method, provider := SMTPLogin(m)
		if method != c.wantMethod || provider != c.wantProvider {
			t.Errorf("%s: got %q %q, want %q %q", c.name, method, provider, c.wantMethod, c.wantProvider)
		}
	}
}
