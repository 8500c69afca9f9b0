package fetch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"postfach/internal/core"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// envImportFigure switches on the import figure (docs/benchmarks/fetch.md); its value is the
// number of messages. It is not part of the normal suite: it runs for a minute.
const envImportFigure = "POSTFACH_BENCH_FETCH"

// benchMessage is a plausible business mail of about 3 KB.
func benchMessage(i int) []byte {
	body := strings.Repeat("Sehr geehrte Damen und Herren, anbei die Unterlagen zu Vorgang "+strconv.Itoa(i)+".\r\n", 36)
	return []byte(fmt.Sprintf("From: Kunde %d <kunde%d@example.org>\r\nTo: info@firma.example\r\nSubject: Anfrage %d\r\n"+
		"Message-ID: <bench.%d@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n%s", i, i%500, i, i, body))
}

// TestImportFigure measures importing a mailbox from Dovecot over IMAP against mbsync
// copying the same mailbox to a Maildir, in the same run on the same machine.
func TestImportFigure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(envImportFigure))
	if n <= 0 {
		t.Skip("set " + envImportFigure + "=10000 to measure the import figure")
	}
	mbsync := testpeers.Mbsync(t)
	dv := testpeers.StartDovecot(t, map[string]string{"bench": "pw-bench"})
	c, err := imapclient.DialInsecure(dv.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("bench", "pw-bench").Wait(); err != nil {
		t.Fatal(err)
	}
	// APPENDs pipelined 200 at a time (LITERAL+), so that filling the mailbox is quick.
	var bytes int64
	for i := 0; i < n; {
		var pending []*imapclient.AppendCommand
		for ; i < n && len(pending) < 200; i++ {
			raw := benchMessage(i)
			bytes += int64(len(raw))
			cmd := c.Append("INBOX", int64(len(raw)), nil)
			_, _ = cmd.Write(raw)
			_ = cmd.Close()
			pending = append(pending, cmd)
		}
		for _, cmd := range pending {
			if _, err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = c.Logout().Wait()

	// mbsync: pull INBOX into an empty Maildir.
	dir := t.TempDir()
	host, port, _ := strings.Cut(dv.IMAPAddr, ":")
	conf := fmt.Sprintf(`IMAPAccount far
Host %s
Port %s
User bench
Pass pw-bench
SSLType None
AuthMechs LOGIN

IMAPStore far
Account far

MaildirStore near
Path %s/
Inbox %s/INBOX

Channel bench
Far :far:INBOX
Near :near:INBOX
Sync Pull
Create Near
SyncState *
`, host, port, dir, dir)
	confPath := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := exec.Command(mbsync, "-c", confPath, "-q", "bench").CombinedOutput(); err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	mbsyncTime := time.Since(start)
	files, _ := os.ReadDir(filepath.Join(dir, "INBOX", "new"))
	cur, _ := os.ReadDir(filepath.Join(dir, "INBOX", "cur"))
	if len(files)+len(cur) != n {
		t.Fatalf("mbsync copied %d messages, want %d", len(files)+len(cur), n)
	}

	fx := newFixture(t, storetest.Open(t), dv)
	id := fx.account(t, "bench@firma.example", core.ReceiveIMAP, dv.IMAPAddr, "none", "bench", "pw-bench", false)
	start = time.Now()
	res := fx.fetchNow(t, id)
	postfachTime := time.Since(start)
	if res.Imported != n {
		t.Fatalf("imported %+v, want %d", res, n)
	}
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	fmt.Printf("import of %d messages (%.1f MB) from Dovecot over IMAP, %s:\n  mbsync → Maildir:   %6.2f s  %7.0f msg/s\n  postfach → database: %6.2f s  %7.0f msg/s  (%.2f× mbsync)\n",
		n, float64(bytes)/1e6, fx.db.Dialect(), mbsyncTime.Seconds(), rate(mbsyncTime), postfachTime.Seconds(), rate(postfachTime), mbsyncTime.Seconds()/postfachTime.Seconds())
}
