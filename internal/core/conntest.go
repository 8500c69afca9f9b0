package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"postfach/internal/conntest"
	"postfach/internal/mailout"
	"postfach/internal/netguard"
	"postfach/internal/store"
)

// Connection test of an account's receive or send settings (C1). The test dials through
// netguard, so a user cannot make Postfach connect to loopback, private or metadata
// addresses. The rate limit is the connection_tests table itself: every test is recorded
// before it runs, so the limit holds across all instances on one database.

// Connection-test limits per user.
const (
	ConnTestBurst  = 10
	ConnTestPeriod = time.Minute
)

// ConnTestInput selects what to test: protocol "receive" (the account's IMAP/POP3 type) or
// "smtp", with optional changed settings typed into the form but not saved yet. Absent
// fields come from the stored account; an absent password uses the stored one.
type ConnTestInput struct {
	Protocol    string  `json:"protocol"` // receive, imap, pop3 or smtp
	Host        *string `json:"host,omitempty"`
	Port        *int    `json:"port,omitempty"`
	Security    *string `json:"security,omitempty"`
	AuthEnabled *bool   `json:"auth,omitempty"` // SMTP login on/off (C6)
	Username    *string `json:"username,omitempty"`
	Password    *string `json:"password,omitempty"`
	Folder      *string `json:"folder,omitempty"`
}

// ConnTestStep is one step of the test, rendered.
type ConnTestStep struct {
	Step    string `json:"step"`
	Name    string `json:"name"` // the step's label in the caller's language
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Millis  int64  `json:"millis"`
}

// ConnTestResult is the outcome in the caller's language.
type ConnTestResult struct {
	OK         bool           `json:"ok"`
	Protocol   string         `json:"protocol"`
	Host       string         `json:"host"`
	Port       int            `json:"port"`
	FailedStep string         `json:"failed_step,omitempty"`
	MessageKey string         `json:"message_key"`
	Message    string         `json:"message"`
	Detail     string         `json:"detail,omitempty"`
	Steps      []ConnTestStep `json:"steps"`
	Warnings   []string       `json:"warnings"`
}

// ConnTestNetwork is what the test may reach. The zero value is the production default:
// public addresses only.
type ConnTestNetwork struct {
	Policy netguard.Policy
}

// TestAccountConnection tests the stored (or submitted) settings of an account.
func (s *Service) TestAccountConnection(ctx context.Context, a Actor, id int64, in ConnTestInput) (ConnTestResult, error) {
	return s.testConnection(ctx, a, &id, in, s.ConnTest)
}

// TestConnection tests settings that are not saved yet (the form of a new account).
func (s *Service) TestConnection(ctx context.Context, a Actor, in ConnTestInput) (ConnTestResult, error) {
	return s.testConnection(ctx, a, nil, in, s.ConnTest)
}

// TestConnectionOn is TestAccountConnection (id non-nil) or TestConnection with an explicit
// network policy: the operator's allowed on-premises ranges.
func (s *Service) TestConnectionOn(ctx context.Context, a Actor, id *int64, in ConnTestInput, network ConnTestNetwork) (ConnTestResult, error) {
	return s.testConnection(ctx, a, id, in, network)
}

func (s *Service) testConnection(ctx context.Context, a Actor, id *int64, in ConnTestInput, network ConnTestNetwork) (ConnTestResult, error) {
	if err := requireAdmin(a); err != nil {
		return ConnTestResult{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return ConnTestResult{}, err
	}
	settings, grant, err := s.connSettings(ctx, tid, id, in)
	if err != nil {
		return ConnTestResult{}, err
	}
	userKey := a.label()
	if a.Kind == ActorOperator || a.Kind == ActorSystem {
		userKey += "@tenant:" + itoa(int(tid))
	}
	entry := store.ConnTestLog{TenantID: tid, MailboxID: id, UserKey: userKey, Protocol: string(settings.Protocol), Host: settings.Host, Port: settings.Port}
	var logID int64
	var limited time.Duration
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		since := tx.Now() - ConnTestPeriod.Milliseconds()
		n, err := tx.CountConnTests(ctx, userKey, since)
		if err != nil {
			return err
		}
		if n >= ConnTestBurst {
			oldest, err := tx.OldestConnTestSince(ctx, userKey, since)
			if err != nil {
				return err
			}
			limited = time.Duration(oldest+ConnTestPeriod.Milliseconds()-tx.Now()) * time.Millisecond
			return nil
		}
		logID, err = tx.AddConnTest(ctx, entry)
		return err
	})
	if err != nil {
		return ConnTestResult{}, fromStore(err, "", "")
	}
	if logID == 0 {
		secs := int(limited.Round(time.Second)/time.Second) + 1
		return ConnTestResult{}, &Error{Status: http.StatusTooManyRequests, Key: "error.conntest_rate_limited", Params: map[string]string{"seconds": itoa(secs)}}
	}

	// The token is fetched only now, after the rate limit: a refresh asks the provider.
	if grant != nil {
		s.signInWithGrant(ctx, &settings, *grant)
	}
	tester := &conntest.Tester{Dialer: &netguard.Dialer{Policy: network.Policy}}
	r := tester.Test(ctx, userKey, settings)

	entry.OK, entry.FailedStep, entry.MessageKey, entry.Detail = r.OK, string(r.FailedStep), r.MessageKey, r.Detail
	target := "tenant"
	if id != nil {
		target = idStr("mailbox", *id)
	}
	err = s.DB.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		if err := tx.FinishConnTest(ctx, logID, entry); err != nil {
			return err
		}
		outcome := "ok"
		if !r.OK {
			outcome = string(r.FailedStep) + ":" + r.MessageKey
		}
		return s.audit(ctx, tx, a, tid, "conntest", target, fmt.Sprintf("%s %s:%d %s", settings.Protocol, settings.Host, settings.Port, outcome))
	})
	if err != nil {
		return ConnTestResult{}, fromStore(err, "", "")
	}
	return renderConnTest(settings, r, a.Lang), nil
}

func renderConnTest(st conntest.Settings, r conntest.Result, lang string) ConnTestResult {
	lang = langOf(lang)
	out := ConnTestResult{OK: r.OK, Protocol: string(st.Protocol), Host: st.Host, Port: st.Port, FailedStep: string(r.FailedStep),
		MessageKey: r.MessageKey, Message: conntest.Text(r.MessageKey, lang), Detail: r.Detail, Steps: []ConnTestStep{}, Warnings: []string{}}
	if r.OK && r.MessageKey == "" {
		out.MessageKey = conntest.KeyOK
		out.Message = conntest.Text(conntest.KeyOK, lang)
	}
	for _, step := range r.Steps {
		cs := ConnTestStep{Step: string(step.Step), Name: conntest.StepName(step.Step, lang), OK: step.OK, Detail: step.Detail, Millis: step.Elapsed.Milliseconds()}
		if step.MessageKey != "" {
			cs.Message = conntest.Text(step.MessageKey, lang)
		}
		out.Steps = append(out.Steps, cs)
	}
	for _, w := range r.Warnings {
		out.Warnings = append(out.Warnings, conntest.Text(w, lang))
	}
	return out
}

// langOf maps a caller's language to what the mail packages' catalogs speak; German by default.
func langOf(lang string) string {
	if strings.HasPrefix(strings.ToLower(lang), "en") {
		return "en"
	}
	return "de"
}

// connGrant is the OAuth2 grant a connection test signs in with.
type connGrant struct {
	mailbox  store.Mailbox
	provider string
}

// signInWithGrant puts the account's OAuth2 access token into the settings, refreshed when
// due, as the fetcher and the outbound queue get it. Without a token the test still runs up
// to the login, which then says why: the grant must be renewed ("Erneut autorisieren"), or
// the token could not be had; it never reads as a wrong password.
func (s *Service) signInWithGrant(ctx context.Context, st *conntest.Settings, g connGrant) {
	tok, err := s.AccountAccessToken(ctx, g.mailbox, g.provider)
	switch {
	case errors.Is(err, ErrReauthorize):
		st.OAuth2Problem = conntest.OAuth2Reauthorize
	case err != nil:
		s.Log.Warn("conntest: oauth2 access token", "mailbox", g.mailbox.ID, "provider", g.provider, "err", err)
		st.OAuth2Problem = conntest.OAuth2TokenUnavailable
	default:
		st.OAuth2Token = tok
	}
}

// SMTPLogin is how an account's own SMTP server is logged in to: the SASL method and, for
// XOAUTH2, the OAuth2 provider whose grant signs in. The outbound queue and the connection
// test follow this one rule, so that a test logs in as sending will. The settings key
// smtp_auth_method ("plain", "login", "xoauth2") decides where it is set; unset, an account
// of an OAuth2 receive type (Office 365, Gmail) without a stored SMTP password uses its
// grant, since the form asks such accounts for no password and both providers refuse
// passwords for SMTP AUTH by default; everything else logs in with PLAIN.
func SMTPLogin(m store.Mailbox) (mailout.AuthMethod, string) {
	as, _ := ParseAccountSettings(m.Settings) // unreadable: no receive type, no OAuth2
	return smtpLogin(m, as)
}

func smtpLogin(m store.Mailbox, as AccountSettings) (mailout.AuthMethod, string) {
	provider := OAuthProviderFor(as.Receive.Type)
	var ss struct {
		AuthMethod mailout.AuthMethod `json:"smtp_auth_method"`
	}
	if strings.TrimSpace(m.Settings) != "" {
		_ = json.Unmarshal([]byte(m.Settings), &ss) // other packages' keys are ignored
	}
	switch ss.AuthMethod {
	case mailout.AuthPlain, mailout.AuthLogin:
		return ss.AuthMethod, ""
	case mailout.AuthXOAuth2:
		if provider != "" {
			return mailout.AuthXOAuth2, provider
		}
		return mailout.AuthPlain, ""
	}
	if provider != "" && !m.SMTP.HasPassword {
		return mailout.AuthXOAuth2, provider
	}
	return mailout.AuthPlain, ""
}

// connSettings builds the settings under test from the stored account and the form input,
// and the grant to sign in with when the account logs in with OAuth2 (C2) by the rules the
// fetcher and the outbound queue follow. A password typed into the form wins over the grant:
// the user is testing a password login.
func (s *Service) connSettings(ctx context.Context, tid int64, id *int64, in ConnTestInput) (conntest.Settings, *connGrant, error) {
	var st conntest.Settings
	var v validator
	proto := v.oneOf("protocol", in.Protocol, "receive", "imap", "pop3", "smtp")
	if err := v.err(); err != nil {
		return st, nil, err
	}
	var (
		m  store.Mailbox
		as AccountSettings
	)
	if id != nil {
		var err error
		if m, err = accountMailbox(ctx, s.DB.Read(), tid, *id); err != nil {
			return st, nil, fromStore(err, "", "")
		}
		if as, err = ParseAccountSettings(m.Settings); err != nil {
			return st, nil, err
		}
	}
	var sealed []byte
	var secretContext, provider string
	switch proto {
	case "smtp":
		st = conntest.Settings{Protocol: conntest.ProtocolSMTP, Host: m.SMTP.Host, Port: m.SMTP.Port, Security: conntest.Security(m.SMTP.Security),
			AuthEnabled: m.SMTP.Auth, Username: m.SMTP.Username}
		sealed, secretContext = m.SMTP.PasswordEncrypted, smtpSecretContext(tid)
		_, provider = smtpLogin(m, as)
	default:
		rs := as.Receive
		typ := rs.Type
		if proto != "receive" {
			typ = proto
		}
		st = conntest.Settings{Host: rs.Host, Port: rs.Port, Security: conntest.Security(rs.Security), AuthEnabled: true, Username: rs.Username}
		if strings.HasPrefix(typ, "pop3") {
			st.Protocol = conntest.ProtocolPOP3
		} else {
			st.Protocol = conntest.ProtocolIMAP
		}
		sealed, secretContext = rs.PasswordSealed, ReceiveSecretContext(tid)
		provider = OAuthProviderFor(rs.Type)
	}
	if in.Host != nil {
		st.Host = strings.TrimSpace(*in.Host)
	}
	if in.Port != nil {
		st.Port = *in.Port
	}
	if in.Security != nil {
		st.Security = conntest.Security(v.oneOf("security", *in.Security, "none", "tls", "starttls"))
	}
	if in.AuthEnabled != nil {
		st.AuthEnabled = *in.AuthEnabled
	}
	if in.Username != nil {
		st.Username = *in.Username
	}
	if in.Folder != nil {
		st.Folder = *in.Folder
	}
	if st.Security == "" {
		st.Security = conntest.SecurityNone
	}
	if st.Port == 0 {
		switch st.Protocol {
		case conntest.ProtocolSMTP:
			st.Port = defaultPort(string(st.Security), 25, 465, 587)
		case conntest.ProtocolPOP3:
			st.Port = defaultPort(string(st.Security), 110, 995, 110)
		default:
			st.Port = defaultPort(string(st.Security), 143, 993, 143)
		}
	}
	if strings.TrimSpace(st.Host) == "" {
		v.add(invalid("host", "error.required", nil))
	}
	if err := v.err(); err != nil {
		return st, nil, err
	}
	if id != nil && provider != "" && in.Password == nil && st.AuthEnabled {
		if st.Protocol == conntest.ProtocolSMTP && st.Username == "" {
			st.Username = m.Address // as the queue logs in
		}
		return st, &connGrant{mailbox: m, provider: provider}, nil
	}
	switch {
	case in.Password != nil:
		st.Password = *in.Password
	case len(sealed) > 0:
		pw, err := s.Secrets.OpenString(secretContext, sealed)
		if err != nil {
			return st, nil, fmt.Errorf("core: open stored password: %w", err)
		}
		st.Password = pw
	}
	return st, nil, nil
}
