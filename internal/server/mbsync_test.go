package server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/testpeers"
)

// maildirFiles lists the message files of a Maildir folder (cur and new), by name.
func maildirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, filepath.Join(dir, sub, e.Name()))
		}
	}
	return out
}

// maildirFlags returns the flag letters of a Maildir file name (after ":2,").
func maildirFlags(name string) string {
	if i := strings.LastIndex(name, ":2,"); i >= 0 {
		return name[i+3:]
	}
	return ""
}

// ageMaildir sets the modification time of every directory under root two seconds back.
func ageMaildir(t *testing.T, root string) {
	t.Helper()
	old := time.Now().Add(-2 * time.Second)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(path, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serverFolder lists the INBOX entries of the fixture's mailbox as the IMAP view has them.
func (f mailFixture) serverFolder(t *testing.T, name string) []store.IMAPEntry {
	t.Helper()
	ctx := context.Background()
	folder, err := f.srv.DB.Read().IMAPFolderByName(ctx, f.box.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := f.srv.DB.Read().IMAPEntries(ctx, folder.ID)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestHostedMbsync syncs a hosted mailbox to a Maildir and back with mbsync (isync): the
// server's mail appears in the Maildir; a message added there is APPENDed; a flag set on
// either side reaches the other; a deletion on either side is expunged on the other.
func TestHostedMbsync(t *testing.T) {
	mbsync := testpeers.Mbsync(t)
	f := startMail(t)
	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, port := hostPort(f.addrs.IMAPTLS)
	conf := fmt.Sprintf(`IMAPAccount hosted
Host localhost
Port %s
User %s
Pass %s
SSLType IMAPS
CertificateFile %s

IMAPStore far
Account hosted

MaildirStore near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel hosted
Far :far:
Near :near:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
CopyArrivalDate yes
`, port, f.box.Address, f.password, f.caPath, maildir, maildir)
	confPath := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sync := func(step string) {
		t.Helper()
		// mbsync sleeps a second when a Maildir directory changed within the current
		// second (to not miss a change in the same second); age the directories instead.
		ageMaildir(t, maildir)
		cmd := exec.Command(mbsync, "-c", confPath, "-V", "hosted")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync (%s): %v\n%s", step, err, out)
		}
	}
	inbox := filepath.Join(maildir, "INBOX")

	// 1. Server to Maildir.
	sync("first")
	files := maildirFiles(t, inbox)
	if len(files) != 1 {
		t.Fatalf("after the first sync the Maildir INBOX has %d messages, want 1: %v", len(files), files)
	}
	body, _ := os.ReadFile(files[0])
	if !strings.Contains(string(body), "Subject: Anfrage Wohnung") {
		t.Fatalf("synced message:\n%s", body)
	}
	for _, name := range []string{"Sent", "Drafts", "Trash", "Junk"} {
		if _, err := os.Stat(filepath.Join(maildir, name)); err != nil {
			t.Errorf("folder %s not created in the Maildir: %v", name, err)
		}
	}

	// 2. Maildir to server (APPEND), with a flag from the file name.
	added := filepath.Join(inbox, "new", "1700000000.postfach-test.local")
	raw := "From: Maria <maria@example.org>\r\nTo: info@makler.example\r\nSubject: Aus dem Maildir\r\nMessage-ID: <md1@example.org>\r\nDate: Tue, 3 Jun 2025 09:00:00 +0200\r\n\r\nHallo aus dem Maildir.\r\n"
	if err := os.WriteFile(added, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	// A new folder with a message: CREATE and APPEND with the file's date.
	sub := filepath.Join(maildir, "Kunden", "Mueller")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(sub, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	subMsg := filepath.Join(sub, "cur", "1700000001.postfach-test.local:2,S")
	if err := os.WriteFile(subMsg, []byte(strings.Replace(raw, "<md1@", "<md2@", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	arrival := time.Date(2024, 11, 5, 8, 30, 0, 0, time.UTC)
	if err := os.Chtimes(subMsg, arrival, arrival); err != nil {
		t.Fatal(err)
	}
	sync("append")
	if sub := f.serverFolder(t, "Kunden/Mueller"); len(sub) != 1 || sub[0].Flags != `\Seen` || sub[0].InternalDate != arrival.UnixMilli() {
		t.Errorf("server folder Kunden/Mueller: %+v (want one seen message dated %v)", sub, arrival)
	}
	entries := f.serverFolder(t, "INBOX")
	if len(entries) != 2 {
		t.Fatalf("server INBOX has %d messages after APPEND, want 2", len(entries))
	}
	appended, err := f.srv.DB.Read().MessageRawByID(context.Background(), f.box.TenantID, entries[1].MessageID)
	if err != nil || !strings.Contains(string(appended), "Aus dem Maildir") {
		t.Fatalf("appended message: %v\n%s", err, appended)
	}

	// 3. A flag set in the Maildir reaches the server.
	var received string
	for _, p := range maildirFiles(t, inbox) {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "Anfrage Wohnung") {
			received = p
		}
	}
	if received == "" {
		t.Fatal("received message missing from the Maildir")
	}
	flagged := received
	if !strings.Contains(filepath.Base(received), ":2,") {
		flagged += ":2,"
	}
	flagged = strings.Replace(flagged, string(filepath.Separator)+"new"+string(filepath.Separator), string(filepath.Separator)+"cur"+string(filepath.Separator), 1)
	flagged += "F"
	if err := os.Rename(received, flagged); err != nil {
		t.Fatal(err)
	}
	sync("flag to server")
	if fl := f.serverFolder(t, "INBOX")[0].Flags; !strings.Contains(fl, `\Flagged`) {
		t.Fatalf("server flags after a Maildir flag: %q", fl)
	}

	// 4. A flag set on the server reaches the Maildir.
	out, err := f.runPy(t, pyPrelude+`
m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
m.login(U, P)
m.select("INBOX")
typ, data = m.store("2", "+FLAGS", r"(\Answered)")
assert typ == "OK", data
m.logout()
print("store ok")
`)
	if err != nil || !strings.Contains(out, "store ok") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	sync("flag to maildir")
	found := false
	for _, p := range maildirFiles(t, inbox) {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "Aus dem Maildir") {
			found = true
			if !strings.Contains(maildirFlags(filepath.Base(p)), "R") {
				t.Errorf("server \\Answered not in the Maildir name %s", filepath.Base(p))
			}
		}
	}
	if !found {
		t.Fatal("appended message missing from the Maildir")
	}

	// 5. A deletion in the Maildir is expunged on the server.
	for _, p := range maildirFiles(t, inbox) {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "Anfrage Wohnung") {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	sync("delete to server")
	entries = f.serverFolder(t, "INBOX")
	if len(entries) != 1 {
		t.Fatalf("server INBOX has %d messages after a Maildir deletion, want 1", len(entries))
	}

	// 6. An expunge on the server removes the file from the Maildir.
	out, err = f.runPy(t, pyPrelude+`
m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
m.login(U, P)
m.select("INBOX")
m.store("1", "+FLAGS", r"(\Deleted)")
typ, data = m.expunge()
assert data == [b"1"], data
m.logout()
print("expunge ok")
`)
	if err != nil || !strings.Contains(out, "expunge ok") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	sync("delete to maildir")
	if files := maildirFiles(t, inbox); len(files) != 0 {
		t.Fatalf("Maildir INBOX after a server expunge: %v", files)
	}
}
