package testpeers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// The codes and tokens OAuthProvider hands out. A test gives OAuthAccessToken to the
// peer that checks the bearer token (Dovecot's passwd-file, SMTPConfig.Tokens).
const (
	// OAuthCode is the one authorisation code the provider exchanges; any other is
	// invalid_grant.
	OAuthCode = "good-code"
	// OAuthFirstToken is the access token of the code exchange. It expires in a minute,
	// within every refresh margin, so its first use refreshes it.
	OAuthFirstToken = "at-1"
	// OAuthRefreshToken is the refresh token of the code exchange.
	OAuthRefreshToken = "rt-1"
	// OAuthAccessToken is the access token a refresh gives; it lasts an hour.
	OAuthAccessToken = "at-2"
)

// OAuthProvider is an in-process OAuth2 token endpoint (RFC 6749 §3.2) standing in for
// Microsoft's or Google's: it exchanges OAuthCode for OAuthFirstToken and
// OAuthRefreshToken, and refreshes to OAuthAccessToken. A test revokes the grant
// (refreshes answer invalid_grant, as Microsoft does with AADSTS50173), takes the
// provider down (requests lose their connection unanswered, a network failure) and counts
// what the client asked.
type OAuthProvider struct {
	// AuthURL is where a client sends the user to sign in; nothing answers there, the
	// test plays the browser. TokenURL is the token endpoint.
	AuthURL, TokenURL string

	srv       *httptest.Server
	requests  atomic.Int32
	refreshes atomic.Int32
	revoked   atomic.Bool
	down      atomic.Bool
	verifier  atomic.Value // string: code_verifier of the last code exchange (PKCE)
}

// StartOAuthProvider starts the token endpoint on loopback; it is stopped at cleanup.
func StartOAuthProvider(t testing.TB) *OAuthProvider {
	t.Helper()
	p := &OAuthProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.AuthURL, p.TokenURL = p.srv.URL+"/authorize", p.srv.URL+"/token"
	t.Cleanup(p.Close)
	return p
}

// SetRevoked revokes the grant at the provider (true) or lets it refresh again (false).
func (p *OAuthProvider) SetRevoked(revoked bool) { p.revoked.Store(revoked) }

// SetDown makes every request lose its connection without an answer (true), until
// SetDown(false).
func (p *OAuthProvider) SetDown(down bool) { p.down.Store(down) }

// Close stops the endpoint for good: later requests find no listener.
func (p *OAuthProvider) Close() { p.srv.Close() }

// SignIn plays the browser at the authorisation URL a client built: the user signs in and
// the provider redirects back with the state and OAuthCode, which SignIn returns for the
// client's callback. A URL that is not the provider's fails the test.
func (p *OAuthProvider) SignIn(t testing.TB, authorizationURL string) (state, code string) {
	t.Helper()
	u, err := url.Parse(authorizationURL)
	if err != nil || !strings.HasPrefix(authorizationURL, p.AuthURL+"?") {
		t.Fatalf("testpeers: authorisation URL %q is not the provider's %s (%v)", authorizationURL, p.AuthURL, err)
	}
	return u.Query().Get("state"), OAuthCode
}

// Requests counts every request the endpoint received, whatever it asked.
func (p *OAuthProvider) Requests() int { return int(p.requests.Load()) }

// Refreshes counts the refresh_token grants asked for, answered or refused.
func (p *OAuthProvider) Refreshes() int { return int(p.refreshes.Load()) }

// CodeVerifier is the PKCE code_verifier (RFC 7636) of the last code exchange, "" when
// there was none or it came without one.
func (p *OAuthProvider) CodeVerifier() string {
	v, _ := p.verifier.Load().(string)
	return v
}

func (p *OAuthProvider) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if p.down.Load() {
		panic(http.ErrAbortHandler) // closes the connection, no response
	}
	_ = r.ParseForm()
	switch r.Form.Get("grant_type") {
	case "authorization_code":
		p.verifier.Store(r.Form.Get("code_verifier"))
		if r.Form.Get("code") != OAuthCode {
			oauthReply(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		oauthReply(w, http.StatusOK, map[string]any{"access_token": OAuthFirstToken, "refresh_token": OAuthRefreshToken,
			"token_type": "Bearer", "expires_in": 60})
	case "refresh_token":
		p.refreshes.Add(1)
		if p.revoked.Load() || r.Form.Get("refresh_token") != OAuthRefreshToken {
			oauthReply(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant",
				"error_description": "AADSTS50173: the grant was revoked"})
			return
		}
		oauthReply(w, http.StatusOK, map[string]any{"access_token": OAuthAccessToken, "token_type": "Bearer", "expires_in": 3600})
	default:
		oauthReply(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
	}
}

// oauthReply writes a token endpoint's JSON answer (RFC 6749 §5.1, §5.2).
func oauthReply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
