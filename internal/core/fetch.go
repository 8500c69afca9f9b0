package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"postfach/internal/store"
)

// Fetching external accounts (C1, C2, C9, C10): the use cases the UI and the API offer around
// the background fetcher (package fetch): its status, "fetch now", the server's folder list
// and which folders are imported, and the OAuth2 grant of the Office 365 (and Gmail) types.
// The fetcher runs on whichever instance holds a source's lease, so these functions never
// talk to a mail server themselves: they mark the source due and the fetcher answers within
// its poll interval (the API says 202 with pending: true, like the domain check).

// OAuth2 providers.
const (
	OAuthMicrosoft = "microsoft"
	OAuthGoogle    = "google"
)

// OAuthProviderFor says which OAuth2 provider an account's receive type signs in with, or ""
// for password types.
func OAuthProviderFor(receiveType string) string {
	switch receiveType {
	case ReceiveIMAPO365, ReceivePOP3O365:
		return OAuthMicrosoft
	case ReceiveIMAPGmail, ReceivePOP3Gmail:
		return OAuthGoogle
	}
	return ""
}

// OAuthSecretContext binds a sealed OAuth2 token to its tenant.
func OAuthSecretContext(tenantID int64) string {
	return "tenant:" + itoa(int(tenantID)) + "/account-oauth"
}

const oauthAppSecretContext = "operator/oauth-app"

// refreshAhead is how long before its expiry an access token is replaced, so that a token
// never expires in the middle of a long IMAP session's login.
const refreshAhead = 5 * time.Minute

// OAuthApp is the operator's client registration at a provider.
type OAuthApp struct {
	Provider     string
	ClientID     string
	ClientSecret string
	AuthURL      string // empty: the provider's public endpoint
	TokenURL     string
	Scopes       []string
}

// DefaultOAuthApp fills in a provider's public endpoints and the mail scopes.
func DefaultOAuthApp(provider, clientID, secret string) OAuthApp {
	app := OAuthApp{Provider: provider, ClientID: clientID, ClientSecret: secret}
	switch provider {
	case OAuthMicrosoft:
		app.AuthURL = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
		app.TokenURL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
		// SMTP.Send lets the queue log in to smtp.office365.com with the same grant.
		app.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/POP.AccessAsUser.All",
			"https://outlook.office.com/SMTP.Send", "offline_access"}
	case OAuthGoogle:
		app.AuthURL = "https://accounts.google.com/o/oauth2/auth"
		app.TokenURL = "https://oauth2.googleapis.com/token"
		app.Scopes = []string{"https://mail.google.com/"}
	}
	return app
}

// SetOAuthApp stores the operator's registration (from the server's configuration at start),
// so that every instance on the database uses the same one.
func (s *Service) SetOAuthApp(ctx context.Context, app OAuthApp) error {
	sealed, err := s.Secrets.SealString(oauthAppSecretContext+"/"+app.Provider, app.ClientSecret)
	if err != nil {
		return fmt.Errorf("oauth app: %w", err)
	}
	return s.DB.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutOAuthApp(ctx, store.OAuthApp{Provider: app.Provider, ClientID: app.ClientID, SecretSealed: sealed,
			AuthURL: app.AuthURL, TokenURL: app.TokenURL, Scopes: strings.Join(app.Scopes, " ")})
	})
}

func (s *Service) oauthConfig(ctx context.Context, tx *store.Tx, provider, redirectURL string) (*oauth2.Config, error) {
	app, err := tx.OAuthApp(ctx, provider)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Status: http.StatusConflict, Key: "error.fetch.oauth_not_configured", Err: err}
	}
	if err != nil {
		return nil, err
	}
	secret, err := s.Secrets.OpenString(oauthAppSecretContext+"/"+provider, app.SecretSealed)
	if err != nil {
		return nil, fmt.Errorf("oauth app: %w", err)
	}
	return &oauth2.Config{ClientID: app.ClientID, ClientSecret: secret, RedirectURL: redirectURL,
		Endpoint: oauth2.Endpoint{AuthURL: app.AuthURL, TokenURL: app.TokenURL}, Scopes: strings.Fields(app.Scopes)}, nil
}

// OAuthStart is where to send the user's browser to grant access.
type OAuthStart struct {
	URL string `json:"url"`
}

// StartAccountOAuth begins the authorisation-code flow with PKCE (RFC 7636) for an account
// of an OAuth2 type; redirectURL is this server's callback as the browser reaches it.
func (s *Service) StartAccountOAuth(ctx context.Context, a Actor, id int64, redirectURL string) (OAuthStart, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return OAuthStart{}, err
	}
	var out OAuthStart
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := accountMailbox(ctx, tx, tid, id)
		if err != nil {
			return fromStore(err, "", "")
		}
		as, err := ParseAccountSettings(m.Settings)
		if err != nil {
			return err
		}
		provider := OAuthProviderFor(as.Receive.Type)
		if provider == "" {
			return invalid("receive.type", "error.fetch.oauth_not_needed", nil)
		}
		cfg, err := s.oauthConfig(ctx, tx, provider, redirectURL)
		if err != nil {
			return err
		}
		var b [24]byte
		_, _ = rand.Read(b[:])
		state := hex.EncodeToString(b[:])
		verifier := oauth2.GenerateVerifier()
		if err := tx.PutOAuthFlow(ctx, store.OAuthFlow{State: state, TenantID: tid, MailboxID: id, Provider: provider, Verifier: verifier,
			RedirectURL: redirectURL, ExpiresAt: tx.Now() + (15 * time.Minute).Milliseconds()}); err != nil {
			return err
		}
		opts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)}
		if as.Receive.Username != "" {
			opts = append(opts, oauth2.SetAuthURLParam("login_hint", as.Receive.Username))
		}
		out.URL = cfg.AuthCodeURL(state, opts...)
		return s.audit(ctx, tx, a, tid, "account.oauth_start", idStr("mailbox", id), provider)
	})
	return out, err
}

// OAuthDone reports a finished grant.
type OAuthDone struct {
	AccountID int64 `json:"account_id"`
}

// FinishAccountOAuth is the provider's redirect back: it exchanges the code for tokens and
// stores them sealed. The state parameter is the authentication (one use, 15 minutes).
func (s *Service) FinishAccountOAuth(ctx context.Context, state, code string) (OAuthDone, error) {
	var flow store.OAuthFlow
	err := s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		flow, err = tx.TakeOAuthFlow(ctx, state)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return OAuthDone{}, &Error{Status: http.StatusBadRequest, Key: "error.fetch.oauth_state", Err: err}
	}
	if err != nil {
		return OAuthDone{}, err
	}
	cfg, err := s.oauthConfig(ctx, s.DB.Read(), flow.Provider, flow.RedirectURL)
	if err != nil {
		return OAuthDone{}, err
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return OAuthDone{}, &Error{Status: http.StatusBadGateway, Key: "error.fetch.oauth_exchange", Err: err}
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := s.putToken(ctx, tx, flow.TenantID, flow.MailboxID, flow.Provider, tok); err != nil {
			return err
		}
		if err := tx.MarkFetchDue(ctx, flow.TenantID, flow.MailboxID, true); err != nil {
			return err
		}
		return s.audit(ctx, tx, Actor{}, flow.TenantID, "account.oauth_granted", idStr("mailbox", flow.MailboxID), flow.Provider)
	})
	return OAuthDone{AccountID: flow.MailboxID}, err
}

func (s *Service) putToken(ctx context.Context, tx *store.Tx, tid, id int64, provider string, tok *oauth2.Token) error {
	raw, err := json.Marshal(tok)
	if err != nil {
		return fmt.Errorf("oauth token: %w", err)
	}
	sealed, err := s.Secrets.Seal(OAuthSecretContext(tid), raw)
	if err != nil {
		return fmt.Errorf("oauth token: %w", err)
	}
	var exp int64
	if !tok.Expiry.IsZero() {
		exp = tok.Expiry.UnixMilli()
	}
	return tx.PutAccountOAuth(ctx, store.AccountOAuth{MailboxID: id, TenantID: tid, Provider: provider, TokenSealed: sealed, ExpiresAt: exp, State: store.OAuthOK})
}

// ErrReauthorize means an account's OAuth2 grant is gone (revoked, expired, never given):
// the account shows "re-authorise" until a user signs in again.
var ErrReauthorize = errors.New("oauth2: the account must be authorised again")

// AccountAccessToken returns a valid access token of an OAuth2 account for the fetcher,
// refreshing it when it expires within refreshAhead. A refresh the provider refuses with
// invalid_grant (RFC 6749 §5.2) puts the account into the re-authorise state and returns
// ErrReauthorize; other failures (network, 5xx) leave the state alone and are retried.
func (s *Service) AccountAccessToken(ctx context.Context, m store.Mailbox, provider string) (string, error) {
	o, err := s.DB.Read().AccountOAuth(ctx, m.TenantID, m.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (o.State == store.OAuthReauthorize || o.Provider != provider)) {
		return "", ErrReauthorize
	}
	if err != nil {
		return "", err
	}
	raw, err := s.Secrets.Open(OAuthSecretContext(m.TenantID), o.TokenSealed)
	if err != nil {
		return "", fmt.Errorf("oauth token: %w", err)
	}
	var tok oauth2.Token
	if err := json.Unmarshal(raw, &tok); err != nil {
		return "", fmt.Errorf("oauth token: %w", err)
	}
	if tok.AccessToken != "" && (tok.Expiry.IsZero() || s.Now().Add(refreshAhead).Before(tok.Expiry)) {
		return tok.AccessToken, nil
	}
	cfg, err := s.oauthConfig(ctx, s.DB.Read(), provider, "")
	if err != nil {
		return "", err
	}
	fresh, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" || err == nil && fresh.AccessToken == "" || tok.RefreshToken == "" {
		detail := "refresh refused"
		if re != nil {
			detail = strings.TrimSpace(re.ErrorCode + " " + re.ErrorDescription)
		}
		o.State, o.Error = store.OAuthReauthorize, detail
		if werr := s.DB.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutAccountOAuth(ctx, o); err != nil {
				return err
			}
			return s.audit(ctx, tx, Actor{}, m.TenantID, "account.oauth_reauthorize", idStr("mailbox", m.ID), detail)
		}); werr != nil {
			return "", werr
		}
		return "", ErrReauthorize
	}
	if err != nil {
		return "", fmt.Errorf("oauth refresh: %w", err)
	}
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = tok.RefreshToken // RFC 6749 §6: the old refresh token stays valid
	}
	if err := s.DB.InTx(ctx, func(tx *store.Tx) error { return s.putToken(ctx, tx, m.TenantID, m.ID, provider, fresh) }); err != nil {
		return "", err
	}
	return fresh.AccessToken, nil
}

// FetchStatus is what the account page shows about fetching.
type FetchStatus struct {
	AccountID int64                 `json:"account_id"`
	Source    *store.FetchSource    `json:"source,omitempty"` // nil until a fetcher has seen the account
	Folders   []store.AccountFolder `json:"folders"`
	// Suggested maps drafts/trash/sent from the server's special-use attributes (RFC 6154),
	// for the form to offer when the user has not chosen (C9).
	Suggested FolderSettings `json:"suggested"`
	// OAuth is "" for password accounts, else ok or reauthorize (C2).
	OAuth      string `json:"oauth"`
	OAuthError string `json:"oauth_error,omitempty"`
	Pending    bool   `json:"pending"` // a run or folder synchronisation was asked for and has not happened yet
}

// AccountFetchStatus reads an account's fetch state, folders and grant.
func (s *Service) AccountFetchStatus(ctx context.Context, a Actor, id int64) (FetchStatus, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return FetchStatus{}, err
	}
	tx := s.DB.Read()
	m, err := accountMailbox(ctx, tx, tid, id)
	if err != nil {
		return FetchStatus{}, fromStore(err, "", "")
	}
	as, err := ParseAccountSettings(m.Settings)
	if err != nil {
		return FetchStatus{}, err
	}
	st := FetchStatus{AccountID: id, Folders: []store.AccountFolder{}}
	if src, err := tx.FetchSourceOf(ctx, tid, id); err == nil {
		st.Source = &src
		st.Pending = src.DueAt == 0 || src.WantFolders
	} else if !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	folders, err := tx.AccountFolders(ctx, tid, id)
	if err != nil {
		return st, err
	}
	if folders != nil {
		st.Folders = folders
	}
	for _, f := range folders {
		switch f.SpecialUse {
		case `\Drafts`:
			st.Suggested.Drafts = f.Name
		case `\Trash`:
			st.Suggested.Trash = f.Name
		case `\Sent`:
			st.Suggested.Sent = f.Name
		}
	}
	st.Suggested.CopyToSent = as.Folders.CopyToSent
	if p := OAuthProviderFor(as.Receive.Type); p != "" {
		st.OAuth = store.OAuthReauthorize
		if o, err := tx.AccountOAuth(ctx, tid, id); err == nil {
			st.OAuth, st.OAuthError = o.State, o.Error
		}
	}
	return st, nil
}

// FetchAccountNow asks for a run of the account as soon as a fetcher is free; syncFolders
// also asks for the server's folder list (C10: "folders appear after a synchronisation").
func (s *Service) FetchAccountNow(ctx context.Context, a Actor, id int64, syncFolders bool) (FetchStatus, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return FetchStatus{}, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := accountMailbox(ctx, tx, tid, id); err != nil {
			return fromStore(err, "", "")
		}
		return tx.MarkFetchDue(ctx, tid, id, syncFolders)
	})
	if err != nil {
		return FetchStatus{}, err
	}
	return s.AccountFetchStatus(ctx, a, id)
}

// FolderImport chooses whether one server folder is imported.
type FolderImport struct {
	Name   string `json:"name"`
	Import bool   `json:"import"`
}

// SetAccountFolderImport chooses the folders to import; names must be in the synchronised list.
func (s *Service) SetAccountFolderImport(ctx context.Context, a Actor, id int64, in []FolderImport) (FetchStatus, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return FetchStatus{}, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := accountMailbox(ctx, tx, tid, id); err != nil {
			return fromStore(err, "", "")
		}
		var changes []string
		for _, f := range in {
			if err := tx.SetAccountFolderImport(ctx, tid, id, f.Name, f.Import); errors.Is(err, store.ErrNotFound) {
				return invalid("folders", "error.fetch.unknown_folder", map[string]string{"name": f.Name})
			} else if err != nil {
				return err
			}
			changes = append(changes, fmt.Sprintf("%s=%t", f.Name, f.Import))
		}
		if err := tx.MarkFetchDue(ctx, tid, id, false); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "account.fetch_folders", idStr("mailbox", id), strings.Join(changes, ","))
	})
	if err != nil {
		return FetchStatus{}, err
	}
	return s.AccountFetchStatus(ctx, a, id)
}
