package testpeers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// tokenReply is what a token endpoint answers (RFC 6749 §5.1, §5.2).
type tokenReply struct {
	Status       int
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
}

// askToken posts a token request by hand: the harness must not depend on the OAuth2
// client it stands in front of.
func askToken(t *testing.T, p *OAuthProvider, form url.Values) (tokenReply, error) {
	t.Helper()
	resp, err := http.PostForm(p.TokenURL, form)
	if err != nil {
		return tokenReply{}, err
	}
	defer resp.Body.Close()
	r := tokenReply{Status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("token reply: %v", err)
	}
	return r, nil
}

func mustAskToken(t *testing.T, p *OAuthProvider, form url.Values) tokenReply {
	t.Helper()
	r, err := askToken(t, p, form)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOAuthProviderGrantRefreshRevoke: the code exchange with PKCE, the refresh, a revoked
// grant and a provider that is down, with the counts a test asserts on.
func TestOAuthProviderGrantRefreshRevoke(t *testing.T) {
	t.Parallel()
	p := StartOAuthProvider(t)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {OAuthRefreshToken}}

	if r := mustAskToken(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {"other"}}); r.Status != 400 || r.Error != "invalid_grant" {
		t.Fatalf("unknown code: %+v", r)
	}
	r := mustAskToken(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {OAuthCode}, "code_verifier": {"v-123"}})
	if r.Status != 200 || r.AccessToken != OAuthFirstToken || r.RefreshToken != OAuthRefreshToken || r.ExpiresIn != 60 || p.CodeVerifier() != "v-123" {
		t.Fatalf("code exchange: %+v, verifier %q", r, p.CodeVerifier())
	}
	if r := mustAskToken(t, p, refresh); r.Status != 200 || r.AccessToken != OAuthAccessToken || r.ExpiresIn != 3600 {
		t.Fatalf("refresh: %+v", r)
	}
	if r := mustAskToken(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt-other"}}); r.Error != "invalid_grant" {
		t.Fatalf("unknown refresh token: %+v", r)
	}
	if r := mustAskToken(t, p, url.Values{"grant_type": {"password"}}); r.Status != 400 || r.Error != "unsupported_grant_type" {
		t.Fatalf("password grant: %+v", r)
	}

	p.SetRevoked(true)
	if r := mustAskToken(t, p, refresh); r.Status != 400 || r.Error != "invalid_grant" {
		t.Fatalf("refresh of a revoked grant: %+v", r)
	}
	p.SetRevoked(false)
	p.SetDown(true)
	if r, err := askToken(t, p, refresh); err == nil {
		t.Fatalf("provider down answered: %+v", r)
	}
	p.SetDown(false)
	if r := mustAskToken(t, p, refresh); r.AccessToken != OAuthAccessToken {
		t.Fatalf("refresh after the provider is back: %+v", r)
	}
	// The refresh while down is a request that never got as far as its grant type.
	if p.Requests() != 8 || p.Refreshes() != 4 {
		t.Errorf("%d requests, %d refreshes; want 8 and 4", p.Requests(), p.Refreshes())
	}

	p.Close()
	if r, err := askToken(t, p, refresh); err == nil {
		t.Fatalf("closed provider answered: %+v", r)
	}
}

// TestOAuthProviderSignIn: the browser's part of the flow returns the client's state and
// the code the provider exchanges.
func TestOAuthProviderSignIn(t *testing.T) {
	t.Parallel()
	p := StartOAuthProvider(t)
	state, code := p.SignIn(t, p.AuthURL+"?client_id=client&state=s-42&code_challenge_method=S256")
	if state != "s-42" || code != OAuthCode {
		t.Fatalf("SignIn gave state %q, code %q", state, code)
	}
	if r := mustAskToken(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {code}}); r.AccessToken != OAuthFirstToken {
		t.Fatalf("code from SignIn: %+v", r)
	}
}
