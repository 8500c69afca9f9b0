package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"postfach/internal/i18n"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// accountsFixture is a migrated database with one tenant and its admin actor.
type accountsFixture struct {
	svc    *Service
	admin  Actor
	tenant int64
}

func newAccountsService(t testing.TB, db *store.DB) *Service {
	t.Helper()
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc := New(db, box, i18n.MustLoad(), nil)
	svc.InboundDomain = "in.postfach.test"
	return svc
}

func newAccountsFixture(t testing.TB, db *store.DB, slug string) accountsFixture {
	t.Helper()
	svc := newAccountsService(t, db)
	op := Actor{Kind: ActorSystem, Name: "test"}
	tn, err := svc.CreateTenant(context.Background(), op, TenantInput{Name: ptrTo("Firma " + slug), Slug: ptrTo(slug)})
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	a, _ := AsOperatorIn(op, tn.ID)
	a.Lang = "de"
	return accountsFixture{svc: svc, admin: a, tenant: tn.ID}
}

func ptrTo[T any](v T) *T { return &v }

func (f accountsFixture) create(t testing.TB, address string) Account {
	t.Helper()
	acc, err := f.svc.CreateAccount(context.Background(), f.admin, AccountInput{Address: ptrTo(address), SenderName: ptrTo("Vertrieb")})
	if err != nil {
		t.Fatalf("create account %s: %v", address, err)
	}
	return acc
}

func statusOf(err error) int {
	if err == nil {
		return 0
	}
	if fe := FieldErrors(err); len(fe) > 0 {
		return fe[0].Status
	}
	return AsError(err).Status
}

func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "acme")
	other := newAccountsFixture(t, db, "other")

	acc := f.create(t, "Info@Kunde.example")
	if acc.Address != "info@kunde.example" || !acc.Active || acc.SenderName != "Vertrieb" {
		t.Fatalf("created %+v", acc)
	}
	if want := fmt.Sprintf("p%d@in.postfach.test", acc.ID); acc.InboundAddress != want {
		t.Errorf("inbound %q, want %q", acc.InboundAddress, want)
	}
	if want := fmt.Sprintf("p%d.out@in.postfach.test", acc.ID); acc.OutboundAddress != want {
		t.Errorf("outbound %q, want %q", acc.OutboundAddress, want)
	}
	if acc.Send.Transport != "system" || acc.DomainStatus.Domain != "kunde.example" || !acc.DomainStatus.Pending {
		t.Errorf("send/domain %+v %+v", acc.Send, acc.DomainStatus)
	}
	// The policy engine offers it: flags Absender and Antwort, unrestricted.
	m, err := db.Read().Mailbox(ctx, f.tenant, acc.ID)
	if err != nil || !m.Sender || !m.Reply || m.Restricted || m.Kind != store.KindAccount {
		t.Fatalf("mailbox %+v %v", m, err)
	}

	// Receive and send settings with passwords: stored sealed, never returned.
	upd, err := f.svc.UpdateAccount(ctx, f.admin, acc.ID, AccountInput{
		Receive: &ReceiveInput{Type: ptrTo(ReceiveIMAPO365), Host: ptrTo("outlook.office365.example"), Security: ptrTo("tls"),
			Username: ptrTo("info@kunde.example"), Password: ptrTo("geheim-empfang"), DeleteOnServer: ptrTo(true)},
		Send: &SMTPInput{Host: ptrTo("smtp.kunde.example"), Security: ptrTo("starttls"), Auth: ptrTo(true),
			Username: ptrTo("info@kunde.example"), Password: ptrTo("geheim-versand")},
		Folders: &FolderInput{Drafts: ptrTo("Entwürfe"), Trash: ptrTo("Papierkorb"), Sent: ptrTo("Gesendete Elemente"), CopyToSent: ptrTo(true)},
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if upd.Receive.Port != 993 || !upd.Receive.HasPassword || !upd.Receive.DeleteOnServer || upd.Send.Transport != "own_smtp" ||
		upd.Send.Port != 587 || !upd.Send.HasPassword || !upd.Folders.CopyToSent || upd.Folders.Sent != "Gesendete Elemente" {
		t.Errorf("updated %+v", upd)
	}
	out, _ := json.Marshal(upd)
	m, _ = db.Read().Mailbox(ctx, f.tenant, acc.ID)
	for _, secret := range []string{"geheim-empfang", "geheim-versand"} {
		if strings.Contains(string(out), secret) || strings.Contains(m.Settings, secret) || strings.Contains(string(m.SMTP.PasswordEncrypted), secret) {
			t.Errorf("secret %q visible in the API view or stored in clear", secret)
		}
	}
	if pw, err := f.svc.ReceivePassword(m); err != nil || pw != "geheim-empfang" {
		t.Errorf("receive password %q %v", pw, err)
	}
	if pw, err := f.svc.SMTPPassword(m); err != nil || pw != "geheim-versand" {
		t.Errorf("smtp password %q %v", pw, err)
	}

	// Deactivate keeps everything (A1).
	off, err := f.svc.SetAccountActive(ctx, f.admin, acc.ID, false)
	if err != nil || off.Active || !off.Receive.HasPassword || off.Folders.Drafts != "Entwürfe" {
		t.Fatalf("deactivate: %+v %v", off, err)
	}
	on, err := f.svc.SetAccountActive(ctx, f.admin, acc.ID, true)
	if err != nil || !on.Active || on.Receive.Host != "outlook.office365.example" {
		t.Fatalf("activate: %+v %v", on, err)
	}

	// Bad input changes nothing.
	for name, in := range map[string]AccountInput{
		"unknown short code": {PrivateOwner: ptrTo("XY")},
		"bad receive type":   {Receive: &ReceiveInput{Type: ptrTo("exchange")}},
		"header injection":   {SenderName: ptrTo("Evil\r\nBcc: x@y.example")},
		"bad port":           {Send: &SMTPInput{Port: ptrTo(70000)}},
	} {
		if _, err := f.svc.UpdateAccount(ctx, f.admin, acc.ID, in); statusOf(err) != http.StatusUnprocessableEntity {
			t.Errorf("%s: err %v, want 422", name, err)
		}
	}
	if again, _ := f.svc.Account(ctx, f.admin, acc.ID); again.UpdatedAt != on.UpdatedAt || again.SenderName != "Vertrieb" {
		t.Errorf("rejected input changed the account: %+v", again)
	}
	if _, err := f.svc.CreateAccount(ctx, f.admin, AccountInput{Address: ptrTo("info@kunde.example")}); statusOf(err) != http.StatusConflict {
		t.Errorf("duplicate: %v", err)
	}

	// Another tenant sees nothing of it.
	if _, err := other.svc.Account(ctx, other.admin, acc.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("foreign read: %v", err)
	}
	if _, err := other.svc.UpdateAccount(ctx, other.admin, acc.ID, AccountInput{Active: ptrTo(false)}); statusOf(err) != http.StatusNotFound {
		t.Errorf("foreign update: %v", err)
	}
	if _, err := other.svc.AccountDeletePreview(ctx, other.admin, acc.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("foreign delete preview: %v", err)
	}
	// An account endpoint does not touch the system mailbox.
	sys, _ := db.Read().Mailboxes(ctx, f.tenant, store.MailboxesFilter{Kind: store.KindSystem})
	if _, err := f.svc.Account(ctx, f.admin, sys[0].ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("system mailbox via account endpoint: %v", err)
	}

	// The audit log has the creation, the secret change and both status changes.
	entries, err := f.svc.Audit(ctx, f.admin, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.Action]++
		if strings.Contains(e.Detail, "geheim") {
			t.Errorf("audit detail holds a secret: %q", e.Detail)
		}
	}
	if seen["account.create"] != 1 || seen["account.secret_change"] != 1 || seen["account.update"] != 3 {
		t.Errorf("audit actions %v", seen)
	}
}

// insertMessages adds n small messages to a mailbox directly with SQL: every tenth is filed
// at a contact, every seventh in the journal, threads of five.
func insertMessages(t testing.TB, db *store.DB, tenant, mailbox, contact int64, n int, tag string) {
	t.Helper()
	ctx := context.Background()
	const batch = 100
	err := db.InTx(ctx, func(tx *store.Tx) error {
		for start := 0; start < n; start += batch {
			var q strings.Builder
			var args []any
			q.WriteString(`INSERT INTO messages (tenant_id, mailbox_id, direction, message_id, thread_id, contact_id, journal, subject, raw, sha256, size, created_at) VALUES `)
			for i := start; i < min(n, start+batch); i++ {
				if i > start {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				raw := fmt.Sprintf("Message-ID: <%s-%d@test>\r\nSubject: %s %d\r\n\r\nbody %d\r\n", tag, i, tag, i, i)
				sum := sha256.Sum256([]byte(raw))
				var cid any
				if contact != 0 && i%10 == 0 {
					cid = contact
				}
				args = append(args, tenant, mailbox, "in", fmt.Sprintf("<%s-%d@test>", tag, i), int64(mailbox*1_000_000+int64(i/5)), cid,
					i%7 == 0, fmt.Sprintf("%s %d", tag, i), []byte(raw), hex.EncodeToString(sum[:]), len(raw), int64(i))
			}
			if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		// Bodies live in message_bodies; messages.raw stays empty.
		if _, err := tx.Exec(ctx, `INSERT INTO message_bodies (message_id, tenant_id, raw)
			SELECT id, tenant_id, raw FROM messages WHERE tenant_id = ? AND length(raw) > 0`, tenant); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE messages SET raw = ? WHERE tenant_id = ? AND length(raw) > 0`, []byte{}, tenant); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert messages: %v", err)
	}
}

func TestDeleteKeepsJournalMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "acme")
	acc := f.create(t, "vertrieb@kunde.example")
	keep := f.create(t, "service@kunde.example")
	contact, err := f.svc.CreateContact(ctx, f.admin, ContactInput{Email: ptrTo("kundin@example.org"), Name: ptrTo("Kundin")})
	if err != nil {
		t.Fatal(err)
	}
	insertMessages(t, db, f.tenant, acc.ID, contact.ID, 70, "del")   // 7 at the contact (i%10), 10 in the journal (i%7), 1 both
	insertMessages(t, db, f.tenant, keep.ID, contact.ID, 20, "keep") // another account: untouched

	p, err := f.svc.AccountDeletePreview(ctx, f.admin, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts.Total != 70 || p.Counts.Kept != 16 || p.Counts.Deleted != 54 {
		t.Fatalf("preview counts %+v", p.Counts)
	}
	if !strings.Contains(p.Message, "54 Nachrichten endgültig gelöscht") || !strings.Contains(p.Message, "16 Nachrichten bleiben erhalten") {
		t.Errorf("confirmation text %q", p.Message)
	}
	// Without the second confirmation nothing happens.
	if _, err := f.svc.DeleteAccount(ctx, f.admin, acc.ID, "wrong"); statusOf(err) != http.StatusConflict {
		t.Fatalf("unconfirmed delete: %v", err)
	}
	// A message arriving between preview and confirmation invalidates the token.
	insertMessages(t, db, f.tenant, acc.ID, 0, 1, "late")
	if _, err := f.svc.DeleteAccount(ctx, f.admin, acc.ID, p.Confirm); statusOf(err) != http.StatusConflict {
		t.Fatalf("stale confirmation: %v", err)
	}
	p, _ = f.svc.AccountDeletePreview(ctx, f.admin, acc.ID)
	done, err := f.svc.DeleteAccount(ctx, f.admin, acc.ID, p.Confirm)
	if err != nil {
		t.Fatal(err)
	}
	if done.Deleted != 54 || done.Kept != 17 { // the late message i=0 is in the journal (0%7 == 0)
		t.Errorf("done %+v", done)
	}
	if _, err := f.svc.Account(ctx, f.admin, acc.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("account still there: %v", err)
	}
	var orphans, atContact, others int
	tx := db.Read()
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND mailbox_id IS NULL`, f.tenant).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	_ = tx.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND contact_id = ? AND mailbox_id IS NULL`, f.tenant, contact.ID).Scan(&atContact)
	_ = tx.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND mailbox_id = ?`, f.tenant, keep.ID).Scan(&others)
	if orphans != 17 || atContact != 7 || others != 20 {
		t.Errorf("kept %d (at contact %d), other account %d", orphans, atContact, others)
	}
	// The kept messages are intact and readable.
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT b.raw FROM messages m JOIN message_bodies b ON b.message_id = m.id
		WHERE m.tenant_id = ? AND m.message_id = ?`, f.tenant, "<del-10@test>").Scan(&raw); err != nil ||
		!strings.Contains(string(raw), "body 10") {
		t.Errorf("kept message unreadable: %q %v", raw, err)
	}
	entries, _ := f.svc.Audit(ctx, f.admin, store.AuditFilter{Action: "account.delete"})
	if len(entries) != 1 || !strings.Contains(entries[0].Detail, "deleted=54 kept=17") {
		t.Errorf("audit %+v", entries)
	}
}

// mergeState is everything a merge must preserve: per-mailbox counts and a hash over every
// message's content, thread and filing (not its mailbox).
type mergeState struct {
	Counts       string
	Content      string
	SourceExists bool
	AliasTarget  int64
}

func readMergeState(t testing.TB, db *store.DB, tenant, source int64) mergeState {
	t.Helper()
	ctx := context.Background()
	var st mergeState
	tx := db.Read()
	rows, err := tx.Query(ctx, `SELECT COALESCE(mailbox_id, 0), COUNT(*) FROM messages WHERE tenant_id = ? GROUP BY mailbox_id ORDER BY 1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var mb, n int64
		if err := rows.Scan(&mb, &n); err != nil {
			t.Fatal(err)
		}
		st.Counts += fmt.Sprintf("%d:%d ", mb, n)
	}
	rows.Close()
	rows, err = tx.Query(ctx, `SELECT m.id, m.message_id, COALESCE(m.thread_id, 0), COALESCE(m.contact_id, 0), m.journal, m.sha256, b.raw
		FROM messages m JOIN message_bodies b ON b.message_id = m.id WHERE m.tenant_id = ? ORDER BY m.id`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for rows.Next() {
		var id, thread, contact int64
		var mid, sum string
		var journal bool
		var raw []byte
		if err := rows.Scan(&id, &mid, &thread, &contact, &journal, &sum, &raw); err != nil {
			t.Fatal(err)
		}
		if rs := sha256.Sum256(raw); hex.EncodeToString(rs[:]) != sum {
			t.Fatalf("message %d: raw does not match its sha256", id)
		}
		fmt.Fprintf(h, "%d|%s|%d|%d|%t|%s\n", id, mid, thread, contact, journal, sum)
	}
	rows.Close()
	st.Content = hex.EncodeToString(h.Sum(nil))
	var n int
	_ = tx.QueryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE id = ?`, source).Scan(&n)
	st.SourceExists = n == 1
	_ = tx.QueryRow(ctx, `SELECT COALESCE(MAX(mailbox_id), 0) FROM mailbox_aliases WHERE local = ?`, store.InboundLocal(source)).Scan(&st.AliasTarget)
	return st
}

// mergeSetup creates two accounts with perAccount messages each, threads and filings, and an
// older alias pointing at the source (from an earlier merge).
func mergeSetup(t testing.TB, db *store.DB, perAccount int) (f accountsFixture, source, target Account) {
	t.Helper()
	ctx := context.Background()
	f = newAccountsFixture(t, db, "merge")
	source = f.create(t, "alt@kunde.example")
	target = f.create(t, "neu@kunde.example")
	contact, err := f.svc.CreateContact(ctx, f.admin, ContactInput{Email: ptrTo("kunde@example.org")})
	if err != nil {
		t.Fatal(err)
	}
	insertMessages(t, db, f.tenant, source.ID, contact.ID, perAccount, "src")
	insertMessages(t, db, f.tenant, target.ID, contact.ID, perAccount, "dst")
	err = db.InTx(ctx, func(tx *store.Tx) error { return tx.AddInboundAlias(ctx, f.tenant, "p999999", source.ID) })
	if err != nil {
		t.Fatal(err)
	}
	return f, source, target
}

func checkMerged(t testing.TB, db *store.DB, f accountsFixture, before, after mergeState, source, target Account, perAccount int) {
	t.Helper()
	if after.Content != before.Content {
		t.Errorf("message content, threads or filings changed by the merge")
	}
	if want := fmt.Sprintf("%d:%d ", target.ID, 2*perAccount); after.Counts != want {
		t.Errorf("counts after %q, want %q", after.Counts, want)
	}
	if after.SourceExists || after.AliasTarget != target.ID {
		t.Errorf("source exists %v, alias -> %d", after.SourceExists, after.AliasTarget)
	}
	ctx := context.Background()
	for _, local := range []string{store.InboundLocal(source.ID), "p999999", store.InboundLocal(target.ID)} {
		m, err := db.Read().ResolveInboundLocal(ctx, local)
		if err != nil || m.ID != target.ID {
			t.Errorf("%s delivers to %d (%v), want %d", local, m.ID, err, target.ID)
		}
	}
}

func TestMergeAccounts5000(t *testing.T) {
	t.Parallel()
	const perAccount = 5000
	ctx := context.Background()
	db := storetest.Open(t)
	f, source, target := mergeSetup(t, db, perAccount)
	before := readMergeState(t, db, f.tenant, source.ID)
	if want := fmt.Sprintf("%d:%d %d:%d ", source.ID, perAccount, target.ID, perAccount); before.Counts != want || !before.SourceExists {
		t.Fatalf("before %+v", before)
	}
	p, err := f.svc.AccountMergePreview(ctx, f.admin, source.ID, target.ID)
	if err != nil || p.Messages != perAccount {
		t.Fatalf("preview %+v %v", p, err)
	}
	if _, err := f.svc.MergeAccounts(ctx, f.admin, source.ID, MergeInput{TargetID: target.ID}); statusOf(err) != http.StatusConflict {
		t.Fatalf("merge without confirmation: %v", err)
	}
	if _, err := f.svc.MergeAccounts(ctx, f.admin, source.ID, MergeInput{TargetID: source.ID, Confirm: p.Confirm}); statusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("merge into itself: %v", err)
	}
	res, err := f.svc.MergeAccounts(ctx, f.admin, source.ID, MergeInput{TargetID: target.ID, Confirm: p.Confirm})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != perAccount || res.Aliases != 2 {
		t.Errorf("result %+v", res)
	}
	checkMerged(t, db, f, before, readMergeState(t, db, f.tenant, source.ID), source, target, perAccount)
	entries, _ := f.svc.Audit(ctx, f.admin, store.AuditFilter{Action: "account.merge"})
	if len(entries) != 1 || !strings.Contains(entries[0].Detail, fmt.Sprintf("messages=%d", perAccount)) {
		t.Errorf("audit %+v", entries)
	}
}

func TestMergeRefusesOtherTenantsTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "a")
	g := newAccountsFixture(t, db, "b")
	src := f.create(t, "x@a.example")
	foreign := g.create(t, "y@b.example")
	if _, err := f.svc.AccountMergePreview(ctx, f.admin, src.ID, foreign.ID); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("preview into a foreign account: %v", err)
	}
	tok := confirmToken("merge", f.tenant, src.ID, foreign.ID, 0)
	if _, err := f.svc.MergeAccounts(ctx, f.admin, src.ID, MergeInput{TargetID: foreign.ID, Confirm: tok}); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("merge into a foreign account: %v", err)
	}
	if _, err := g.svc.Account(ctx, g.admin, foreign.ID); err != nil {
		t.Errorf("foreign account damaged: %v", err)
	}
	var n int
	_ = db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM mailbox_aliases`).Scan(&n)
	if n != 0 {
		t.Errorf("%d aliases after a refused merge", n)
	}
}
