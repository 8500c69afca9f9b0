package fetch

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/core"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// TestOAuthGrantRefreshAndRevoke runs the grant, the refresh before expiry and a revoked
// grant for every OAuth2 receive type (C2): the Office 365 types sign in at Microsoft, the
// Gmail types at Google.
func TestOAuthGrantRefreshAndRevoke(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ, provider string
	}{
		{core.ReceiveIMAPO365, core.OAuthMicrosoft},
		{core.ReceivePOP3O365, core.OAuthMicrosoft},
		{core.ReceiveIMAPGmail, core.OAuthGoogle},
		{core.ReceivePOP3Gmail, core.OAuthGoogle},
	} {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			testOAuthGrant(t, c.typ, c.provider)
		})
	}
}

func testOAuthGrant(t *testing.T, typ, provider string) {
	ctx := context.Background()
	fx := newFixture(t, storetest.Open(t), nil)
	ep := fx.startOAuthProvider(t, provider, "IMAP.AccessAsUser.All", "offline_access")
	id := fx.account(t, "o365@firma.example", typ, "127.0.0.1:1", "tls", "o365@firma.example", "", false)
	if p := core.OAuthProviderFor(typ); p != provider {
		t.Fatalf("provider %q, want %q", p, provider)
	}

	st, err := fx.svc.AccountFetchStatus(ctx, fx.admin, id)
	if err != nil || st.OAuth != store.OAuthReauthorize {
		t.Fatalf("before any grant: %+v, %v", st, err)
	}
	start, err := fx.svc.StartAccountOAuth(ctx, fx.admin, id, "https://postfach.example/api/v1/oauth/callback")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(start.URL)
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("login_hint") != "o365@firma.example" || q.Get("client_id") != "client" {
		t.Fatalf("authorisation URL %s", start.URL)
	}
	state, code := ep.SignIn(t, start.URL)
	if _, err := fx.svc.FinishAccountOAuth(ctx, state, code); err != nil {
		t.Fatal(err)
	}
	if ep.CodeVerifier() == "" {
		t.Fatal("no PKCE verifier sent")
	}
	if _, err := fx.svc.FinishAccountOAuth(ctx, state, code); err == nil {
		t.Fatal("a state was accepted twice")
	}

	mb, err := fx.db.Read().MailboxByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The stored token expires in a minute: refreshed before use.
	tok, err := fx.svc.AccountAccessToken(ctx, mb, provider)
	if err != nil || tok != testpeers.OAuthAccessToken {
		t.Fatalf("token %q, %v; want the refreshed one", tok, err)
	}
	calls := ep.Requests()
	if tok, err := fx.svc.AccountAccessToken(ctx, mb, provider); err != nil || tok != testpeers.OAuthAccessToken || ep.Requests() != calls {
		t.Fatalf("a valid token was refreshed again: %q, %v", tok, err)
	}

	// Revoked at the provider: once the token is due, the account shows "re-authorise".
	ep.SetRevoked(true)
	fx.svc.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := fx.svc.AccountAccessToken(ctx, mb, provider); !errors.Is(err, core.ErrReauthorize) {
		t.Fatalf("revoked grant: %v", err)
	}
	st, err = fx.svc.AccountFetchStatus(ctx, fx.admin, id)
	if err != nil || st.OAuth != store.OAuthReauthorize || !strings.Contains(st.OAuthError, "invalid_grant") {
		t.Fatalf("status after revocation: %+v, %v", st, err)
	}
	// The fetcher reports it instead of failing silently, and does not hammer the provider.
	calls = ep.Requests()
	if _, err := fx.svc.FetchAccountNow(ctx, fx.admin, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.RunSource(ctx, id); !errors.Is(err, core.ErrReauthorize) {
		t.Fatalf("fetch of a revoked account: %v", err)
	}
	if ep.Requests() != calls {
		t.Fatal("the provider was asked again after invalid_grant")
	}
	src, _ := fx.db.Read().FetchSource(ctx, id)
	if !strings.Contains(src.LastError, "authorised again") {
		t.Fatalf("source error %q", src.LastError)
	}
}

// TestLeaseOneHolder: of several instances racing for a due source, exactly one gets it;
// a lost lease fences the holder out of committing.
func TestLeaseOneHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := newFixture(t, storetest.Open(t), nil)
	id := fx.account(t, "lease@firma.example", core.ReceiveNone, "127.0.0.1:1", "none", "", "", false)
	if err := fx.db.InTx(ctx, func(tx *store.Tx) error { return tx.MarkFetchDue(ctx, fx.tenant, id, false) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := fx.db.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.ClaimFetchSource(ctx, id, "instance-"+string(rune('a'+i)), tx.Now()+60_000)
				return err
			})
			if err == nil {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d instances hold the lease", won.Load())
	}
	err := fx.db.InTx(ctx, func(tx *store.Tx) error { return tx.RenewFetchLease(ctx, id, "someone-else", tx.Now()+1000) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renewal by a non-holder: %v", err)
	}
}
