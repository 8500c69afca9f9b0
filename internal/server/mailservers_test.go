package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/mailstore"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// fakeTXT answers TXT lookups from a map.
type fakeTXT map[string][]string

func (f fakeTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := f[name]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

type mailFixture struct {
	srv      *Server
	admin    core.Actor
	adminPW  string
	box      store.Mailbox
	password string
	caPath   string
	addrs    MailAddrs
	other    store.Mailbox // a mailbox of another tenant
}

func python(t *testing.T) string {
	t.Helper()
	return testpeers.Binary(t, "python3", "python3")
}

func startMail(t *testing.T) mailFixture {
	t.Helper()
	return startMailWith(t, MailOptions{})
}

func startMailWith(t *testing.T, opts MailOptions) mailFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ca := testpeers.NewCA(t)
	caPath, certPath, keyPath := ca.WriteFiles(dir, "localhost", "127.0.0.1")
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.DatabaseURL, _ = storetest.URL(t)
	cfg.Hostname = "localhost"
	cfg.TLSCertFile, cfg.TLSKeyFile = certPath, keyPath
	for _, a := range []*string{&cfg.IMAPAddr, &cfg.IMAPTLSAddr, &cfg.POP3Addr, &cfg.POP3TLSAddr, &cfg.SubmissionAddr, &cfg.SubmissionTLSAddr} {
		*a = "127.0.0.1:0"
	}
	if cfg.DatabaseURL == "" {
		cfg.DataDir = filepath.Dir(filepath.Join(dir, "x"))
	}
	srv, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	if err := srv.ListenMailWith(opts); err != nil {
		t.Fatal(err)
	}
	op := core.Actor{Kind: core.ActorSystem, Name: "test"}
	f := mailFixture{srv: srv, caPath: caPath, addrs: srv.MailAddrs(), adminPW: "Admin-Passwort-1234"}
	resolver := fakeTXT{}
	srv.Core.Hosting.Resolver = resolver
	hosted := func(slug, domain, local string) (core.Actor, store.Mailbox, string) {
		tn, err := srv.Core.CreateTenant(ctx, op, core.TenantInput{Name: ptr("Firma " + slug), Slug: ptr(slug)})
		if err != nil {
			t.Fatal(err)
		}
		opIn, _ := core.AsOperatorIn(op, tn.ID)
		u, err := srv.Core.CreateUser(ctx, opIn, core.UserInput{Login: ptr("admin"), DisplayName: ptr("Anna Admin"), Role: ptr("admin"), Password: ptr(f.adminPW)})
		if err != nil {
			t.Fatal(err)
		}
		admin := core.Actor{Kind: core.ActorAdmin, TenantID: tn.ID, UserID: u.ID, Name: "admin"}
		d, err := srv.Core.AddTenantDomain(ctx, admin, domain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Core.CreateHostedMailbox(ctx, admin, core.HostedInput{Address: ptr(local + "@" + domain)}); err == nil {
			t.Fatal("hosted mailbox created on an unverified domain")
		}
		resolver[domain] = []string{"v=spf1 -all", core.VerifyPrefix + d.VerifyToken}
		if v, err := srv.Core.VerifyTenantDomain(ctx, admin, d.ID); err != nil || !v.Verified {
			t.Fatalf("verify: %+v %v", v, err)
		}
		created, err := srv.Core.CreateHostedMailbox(ctx, admin, core.HostedInput{Address: ptr(local + "@" + domain), DisplayName: ptr("Vertrieb")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Core.AddGrant(ctx, admin, created.Mailbox.ID, core.GrantInput{UserID: &u.ID}); err != nil {
			t.Fatal(err)
		}
		return admin, created.Mailbox, created.Password
	}
	f.admin, f.box, f.password = hosted("makler", "makler.example", "info")
	_, f.other, _ = hosted("andere", "andere.example", "chef")
	// A message received by the inbound server.
	err = srv.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := mailstore.Deliver(ctx, tx, mailstore.Delivery{Source: "smtp", EnvelopeFrom: "kunde@example.org", Mailboxes: []store.Mailbox{f.box},
			Raw:      []byte("From: Kunde <kunde@example.org>\r\nTo: info@makler.example\r\nSubject: Anfrage Wohnung\r\nMessage-ID: <a1@example.org>\r\nDate: Mon, 2 Jun 2025 10:00:00 +0200\r\n\r\nGuten Tag, ist die Wohnung frei?\r\n"),
			Hostname: "localhost"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

// runPy runs a Python snippet with the fixture's values in its environment.
func (f mailFixture) runPy(t *testing.T, script string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(python(t), "-c", script)
	cmd.Env = append(cmd.Environ(), f.env()...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func hostPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}

// openIMAPSession starts a Python IMAP client that logs in, selects INBOX and waits. It
// returns the "ready <messages>" line it printed, and end, which lets the client send NOOP
// and returns what it printed after that ("closed" when the server ended the session).
func (f mailFixture) openIMAPSession(t *testing.T) (ready string, end func() string) {
	t.Helper()
	cmd := exec.Command(python(t), "-c", pyPrelude+`
m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
m.login(U, P)
typ, data = m.select("INBOX")
print("ready", data[0].decode(), flush=True)
sys.stdin.readline()
wait_closed(m)
`)
	cmd.Env = append(cmd.Environ(), f.env()...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	ready, _ = r.ReadString('\n')
	return strings.TrimSpace(ready), func() string {
		fmt.Fprintln(stdin, "go")
		rest, _ := io.ReadAll(r)
		_ = cmd.Wait()
		return string(rest)
	}
}

func (f mailFixture) env() []string {
	_, imapTLS := hostPort(f.addrs.IMAPTLS)
	_, imap := hostPort(f.addrs.IMAP)
	_, pop3TLS := hostPort(f.addrs.POP3TLS)
	_, sub := hostPort(f.addrs.Submission)
	_, subTLS := hostPort(f.addrs.SubmissionTLS)
	return []string{"CA=" + f.caPath, "USER=" + f.box.Address, "PASS=" + f.password, "IMAPS=" + imapTLS, "IMAP=" + imap,
		"POP3S=" + pop3TLS, "SUB=" + sub, "SUBS=" + subTLS, "OTHER=" + f.other.Address}
}

const pyPrelude = `
import os, ssl, imaplib, poplib, smtplib, sys, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
U, P = os.environ["USER"], os.environ["PASS"]

def wait_closed(m):
    # The change signal ends the session; on a loaded machine it may take a moment to arrive.
    for _ in range(50):
        try:
            m.noop()
        except Exception as e:
            print("closed", type(e).__name__)
            return
        time.sleep(0.1)
    print("still open")
`

func TestHostedIMAPWithPython(t *testing.T) {
	f := startMail(t)
	out, err := f.runPy(t, pyPrelude+`
m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
m.login(U, P)
typ, data = m.list()
names = b" ".join(data)
for want in [b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk"]:
    assert want in names, names
typ, data = m.select("INBOX")
assert data[0] == b"1", data
typ, data = m.fetch("1", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert b"Anfrage Wohnung" in data[0][1], data
typ, data = m.search(None, "TEXT", "Wohnung")
assert data[0] == b"1", data
typ, data = m.append("INBOX", r"(\Flagged)", None, b"From: a@example.org\r\nTo: info@makler.example\r\nSubject: Zweite\r\nMessage-ID: <a2@example.org>\r\n\r\nHallo\r\n")
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = m.noop()
typ, data = m.search(None, "FLAGGED")
assert data[0] == b"2", data
typ, data = m.create("Kunden/Mueller")
assert typ == "OK", data
typ, data = m.uid("MOVE", "2", "Kunden/Mueller")
assert typ == "OK", data
typ, data = m.select("Kunden/Mueller")
assert data[0] == b"1", data
m.select("INBOX")
m.store("1", "+FLAGS", r"(\Deleted)")
typ, data = m.expunge()
assert data == [b"1"], data
typ, data = m.select("INBOX")
assert data[0] == b"0", data
m.logout()
print("imap ok")
`)
	if err != nil || !strings.Contains(out, "imap ok") {
		t.Fatalf("python imaplib: %v\n%s", err, out)
	}
	// STARTTLS on the plain port, and no login without it.
	out, err = f.runPy(t, pyPrelude+`
m = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP"]))
try:
    m.login(U, P)
    print("login without TLS accepted")
except imaplib.IMAP4.error:
    pass
m.starttls(ssl_context=ctx)
m.login(U, P)
print("starttls ok")
`)
	if err != nil || !strings.Contains(out, "starttls ok") {
		t.Fatalf("python STARTTLS: %v\n%s", err, out)
	}
}

func TestHostedCurlIMAPAndPOP3(t *testing.T) {
	f := startMail(t)
	curl := testpeers.Curl(t)
	_, imaps := hostPort(f.addrs.IMAPTLS)
	out, err := exec.Command(curl, "-sS", "--cacert", f.caPath, "--user", f.box.Address+":"+f.password,
		"imaps://localhost:"+imaps+"/INBOX;UID=1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ist die Wohnung frei") {
		t.Fatalf("curl imaps: %v\n%s", err, out)
	}
	_, pop3s := hostPort(f.addrs.POP3TLS)
	out, err = exec.Command(curl, "-sS", "--cacert", f.caPath, "--user", f.box.Address+":"+f.password,
		"pop3s://localhost:"+pop3s+"/1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ist die Wohnung frei") {
		t.Fatalf("curl pop3s: %v\n%s", err, out)
	}
	pyOut, err := f.runPy(t, pyPrelude+`
p = poplib.POP3_SSL("localhost", int(os.environ["POP3S"]), context=ctx)
p.user(U); p.pass_(P)
n, size = p.stat()
assert n == 1, n
resp, lines, octets = p.retr(1)
assert b"Subject: Anfrage Wohnung" in lines, lines
resp, uidls, octets = p.uidl()
p.dele(1)
p.quit()
p = poplib.POP3_SSL("localhost", int(os.environ["POP3S"]), context=ctx)
p.user(U); p.pass_(P)
assert p.stat()[0] == 0
p.quit()
print("pop3 ok")
`)
	if err != nil || !strings.Contains(pyOut, "pop3 ok") {
		t.Fatalf("python poplib: %v\n%s", err, pyOut)
	}
}

func TestHostedSubmission(t *testing.T) {
	f := startMail(t)
	out, err := f.runPy(t, pyPrelude+`
def send(port, tls, frm, hdr_from):
    if tls:
        s = smtplib.SMTP_SSL("localhost", port, context=ctx)
    else:
        s = smtplib.SMTP("localhost", port); s.starttls(context=ctx)
    s.login(U, P)
    msg = "From: %s\r\nTo: kunde@example.org\r\nSubject: Angebot\r\n\r\nHier das Angebot.\r\n" % hdr_from
    try:
        s.sendmail(frm, ["kunde@example.org"], msg)
        return "accepted"
    except smtplib.SMTPException as e:
        return "refused %s" % (e,)
    finally:
        s.quit()
print("own:", send(int(os.environ["SUB"]), False, U, "Vertrieb <%s>" % U))
print("own465:", send(int(os.environ["SUBS"]), True, U, U))
print("header:", send(int(os.environ["SUB"]), False, U, "chef@fremd.example"))
print("cross:", send(int(os.environ["SUB"]), False, os.environ["OTHER"], U))
# AUTH LOGIN (Outlook's mechanism): with prompts for both values, and with the user name as
# initial response; a wrong password is refused.
for initial in (False, True):
    s = smtplib.SMTP("localhost", int(os.environ["SUB"])); s.starttls(context=ctx); s.ehlo()
    s.user, s.password = U, P
    assert "LOGIN" in s.esmtp_features["auth"].split(), s.esmtp_features
    code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=initial)
    s.sendmail(U, ["kunde@example.org"], "From: %s\r\nTo: kunde@example.org\r\nSubject: Login\r\n\r\nx\r\n" % U)
    s.quit()
    print("login initial=%s: %d" % (initial, code))
s = smtplib.SMTP_SSL("localhost", int(os.environ["SUBS"]), context=ctx)
s.ehlo(); s.user, s.password = U, "falsch"
try:
    s.auth("LOGIN", s.auth_login, initial_response_ok=False); print("login wrong: accepted")
except smtplib.SMTPAuthenticationError as e:
    print("login wrong: refused", e.smtp_code)
`)
	if err != nil {
		t.Fatalf("python smtplib: %v\n%s", err, out)
	}
	for _, want := range []string{"own: accepted", "own465: accepted", "header: refused", "cross: refused",
		"login initial=False: 235", "login initial=True: 235", "login wrong: refused 535"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in\n%s", want, out)
		}
	}
	var queued int
	if err := f.srv.DB.SQL().QueryRow(f.srv.DB.Rebind(`SELECT COUNT(*) FROM outbound_queue WHERE mailbox_id = ?`), f.box.ID).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != 4 {
		t.Errorf("queued %d messages, want 4", queued)
	}
	// swaks as a second real client, without TLS: AUTH must be refused.
	swaks := testpeers.Swaks(t)
	_, sub := hostPort(f.addrs.Submission)
	sw, err := exec.Command(swaks, "--server", "127.0.0.1", "--port", sub, "--from", f.box.Address, "--to", "kunde@example.org",
		"--auth", "PLAIN", "--auth-user", f.box.Address, "--auth-password", f.password, "--tls", "--tls-ca-path", f.caPath,
		"--header", "From: "+f.box.Address).CombinedOutput()
	if err != nil || !strings.Contains(string(sw), "250") {
		t.Errorf("swaks over STARTTLS: %v\n%s", err, sw)
	}
	sw, err = exec.Command(swaks, "--server", "127.0.0.1", "--port", sub, "--from", f.box.Address, "--to", "kunde@example.org",
		"--auth", "LOGIN", "--auth-user", f.box.Address, "--auth-password", f.password, "--tls", "--tls-ca-path", f.caPath,
		"--header", "From: "+f.box.Address).CombinedOutput()
	if err != nil || !strings.Contains(string(sw), "334 VXNlcm5hbWU6") || !strings.Contains(string(sw), "235 ") {
		t.Errorf("swaks AUTH LOGIN: %v\n%s", err, sw)
	}
}

func TestHostedNewPasswordEndsSessions(t *testing.T) {
	f := startMail(t)
	ctx := context.Background()
	shown, err := f.srv.Core.ShowHostedPassword(ctx, f.admin, f.box.ID, "wrong")
	if err == nil || shown != "" {
		t.Fatal("password shown without re-authentication")
	}
	if shown, err = f.srv.Core.ShowHostedPassword(ctx, f.admin, f.box.ID, f.adminPW); err != nil || shown != f.password {
		t.Fatalf("show password: %q %v", shown, err)
	}
	// An IMAP session that stays open while the password changes.
	ready, end := f.openIMAPSession(t)
	if !strings.HasPrefix(ready, "ready") {
		t.Fatalf("python: %q", ready)
	}
	newPW, err := f.srv.Core.RegenerateHostedPassword(ctx, f.admin, f.box.ID)
	if err != nil || len(newPW) < 26 {
		t.Fatalf("regenerate: %q %v", newPW, err)
	}
	time.Sleep(200 * time.Millisecond) // let the BYE reach the client before it sends NOOP
	if rest := end(); !strings.Contains(rest, "closed") {
		t.Errorf("open IMAP session after a new password: %s", rest)
	}
	out, err := f.runPy(t, pyPrelude+`
def attempt(name, fn):
    try:
        fn(); print(name, "accepted")
    except Exception as e:
        print(name, "refused")
def imap(pw):
    m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx); m.login(U, pw); m.logout()
def pop(pw):
    p = poplib.POP3_SSL("localhost", int(os.environ["POP3S"]), context=ctx); p.user(U); p.pass_(pw); p.quit()
def smtp(pw):
    s = smtplib.SMTP_SSL("localhost", int(os.environ["SUBS"]), context=ctx); s.login(U, pw); s.quit()
for name, fn in [("imap", imap), ("pop3", pop), ("smtp", smtp)]:
    attempt(name + " old", lambda: fn(P))
    attempt(name + " new", lambda: fn(os.environ["NEW"]))
`, "NEW="+newPW)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for _, p := range []string{"imap", "pop3", "smtp"} {
		if !strings.Contains(out, p+" old refused") || !strings.Contains(out, p+" new accepted") {
			t.Errorf("%s: old password must fail and the new one work:\n%s", p, out)
		}
	}
}

func TestHostedLoginThrottle(t *testing.T) {
	f := startMail(t)
	out, err := f.runPy(t, pyPrelude+`
import socket
class From(imaplib.IMAP4_SSL):
    def __init__(self, src, *a, **kw):
        self.src = src
        super().__init__(*a, **kw)
    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self.src, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
m = From("127.0.0.1", "localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
refused = 0
t0 = time.time()
for i in range(1000):
    try:
        m.login(U, "falsch%d" % i)
    except imaplib.IMAP4.error as e:
        refused += 1
print("refused", refused, "in %.1fs" % (time.time() - t0))
try:
    m.login(U, P); print("same address: accepted")
except imaplib.IMAP4.error:
    print("same address: refused")
o = From("127.0.1.1", "localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
o.login(U, P)
print("other address: accepted")
`)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
	if !strings.Contains(out, "refused 1000") || !strings.Contains(out, "same address: refused") || !strings.Contains(out, "other address: accepted") {
		t.Fatalf("throttle:\n%s", out)
	}
	var hashed, throttled int
	q := f.srv.DB.Rebind(`SELECT COALESCE(SUM(CASE WHEN outcome = ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN outcome = ? THEN 1 ELSE 0 END), 0) FROM auth_attempts WHERE remote_ip = ?`)
	if err := f.srv.DB.SQL().QueryRow(q, store.AuthFailed, store.AuthThrottled, "127.0.0.1").Scan(&hashed, &throttled); err != nil {
		t.Fatal(err)
	}
	t.Logf("from 127.0.0.1: %d attempts checked, %d refused without hashing", hashed, throttled)
	if hashed != core.AuthMaxFailsIP || throttled != 1001-core.AuthMaxFailsIP {
		t.Errorf("checked %d, throttled %d", hashed, throttled)
	}
}

var _ = errors.Is
