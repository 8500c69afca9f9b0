package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"

	"postfach/internal/core"
	"postfach/internal/i18n"
	"postfach/internal/netguard"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// fixture is a migrated database with one tenant, its admin and a fetcher that may reach
// loopback (the test peers) and trusts the test CA.
type fixture struct {
	db     *store.DB
	svc    *core.Service
	admin  core.Actor
	tenant int64
	f      *Fetcher
}

var loopback = netguard.Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func newFixture(t testing.TB, db *store.DB, dv *testpeers.Dovecot) *fixture {
	t.Helper()
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc := core.New(db, box, i18n.MustLoad(), nil)
	op := core.Actor{Kind: core.ActorSystem, Name: "test"}
	tn, err := svc.CreateTenant(context.Background(), op, core.TenantInput{Name: ptr("Firma"), Slug: ptr("firma")})
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	a, _ := core.AsOperatorIn(op, tn.ID)
	fx := &fixture{db: db, svc: svc, admin: a, tenant: tn.ID,
		f: &Fetcher{DB: db, Core: svc, Network: loopback, NoIdle: true, Holder: "test"}}
	if dv != nil {
		fx.f.RootCAs = dv.CA.Pool()
	}
	return fx
}

func ptr[T any](v T) *T { return &v }

// account creates a mail account that receives from addr ("127.0.0.1:port").
func (fx *fixture) account(t testing.TB, address, typ, addr, security, user, password string, del bool) int64 {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	acc, err := fx.svc.CreateAccount(context.Background(), fx.admin, core.AccountInput{Address: ptr(address), SenderName: ptr("Vertrieb"),
		Receive: &core.ReceiveInput{Type: ptr(typ), Host: ptr("localhost"), Port: ptr(port), Security: ptr(security),
			Username: ptr(user), Password: ptr(password), DeleteOnServer: ptr(del)}})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	return acc.ID
}

// imapAccount creates the account user@firma.example that fetches the Dovecot user's mail
// over IMAP with the password "pw-"+user: on the implicit-TLS port for security "tls", on
// the plain port (STARTTLS or none) otherwise.
func (fx *fixture) imapAccount(t testing.TB, dv *testpeers.Dovecot, user, security string, del bool) int64 {
	t.Helper()
	addr := dv.IMAPAddr
	if security == "tls" {
		addr = dv.IMAPSAddr
	}
	return fx.account(t, user+"@firma.example", core.ReceiveIMAP, addr, security, user, "pw-"+user, del)
}

// dovecotAccount starts a private Dovecot with the one user user (password "pw-"+user) and
// a fixture with that user's IMAP account (see imapAccount).
func dovecotAccount(t testing.TB, user, security string, del bool) (*testpeers.Dovecot, *fixture, int64) {
	t.Helper()
	dv := testpeers.StartDovecot(t, map[string]string{user: "pw-" + user})
	fx := newFixture(t, storetest.Open(t), dv)
	return dv, fx, fx.imapAccount(t, dv, user, security, del)
}

// startOAuthProvider registers an in-process token endpoint as the operator's application
// at provider (Microsoft or Google).
func (fx *fixture) startOAuthProvider(t testing.TB, provider string, scopes ...string) *testpeers.OAuthProvider {
	t.Helper()
	ep := testpeers.StartOAuthProvider(t)
	if err := fx.svc.SetOAuthApp(context.Background(), core.OAuthApp{Provider: provider, ClientID: "client", ClientSecret: "s3cret",
		AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, Scopes: scopes}); err != nil {
		t.Fatal(err)
	}
	return ep
}

// fetchNow runs one fetch of the account, as "fetch now" would.
func (fx *fixture) fetchNow(t testing.TB, id int64) Result {
	t.Helper()
	ctx := context.Background()
	if err := fx.db.InTx(ctx, func(tx *store.Tx) error { return tx.MarkFetchDue(ctx, fx.tenant, id, false) }); err != nil {
		t.Fatal(err)
	}
	res, err := fx.f.RunSource(ctx, id)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return res
}

// queryRows reads every row of a query; fields names the destinations of one row's columns.
func queryRows[T any](t testing.TB, db *store.DB, fields func(*T) []any, query string, args ...any) []T {
	t.Helper()
	rows, err := db.Read().Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(fields(&v)...); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// column is the fields function of a query that selects one column.
func column[T any](v *T) []any { return []any{v} }

// storedHashes counts the account's stored messages by content hash.
func storedHashes(t testing.TB, db *store.DB, mailboxID int64) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range queryRows(t, db, column[string], `SELECT sha256 FROM messages WHERE mailbox_id = ?`, mailboxID) {
		out[s]++
	}
	return out
}

func hashOf(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

// message builds a small distinct message with CRLF line ends.
func message(i int, tag string) []byte {
	return []byte(fmt.Sprintf("From: Kunde %d <kunde%d@example.org>\r\nTo: info@firma.example\r\nSubject: %s %d\r\n"+
		"Message-ID: <%s.%d@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nHallo %d\r\n", i, i, tag, i, tag, i, i))
}

var messagesRE = regexp.MustCompile(`messages=(\d+)`)

// serverCount asks Dovecot how many messages a folder holds.
func serverCount(t testing.TB, dv *testpeers.Dovecot, user, folder string) int {
	t.Helper()
	out := dv.Doveadm(t, "mailbox", "status", "-u", user, "messages", folder)
	m := messagesRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("doveadm mailbox status: %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
