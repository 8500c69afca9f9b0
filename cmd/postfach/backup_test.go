package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/demo"
	"postfach/internal/server"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

const demoPassword = "demo-passwort-123"

func openServer(t *testing.T, dataDir, dbURL string) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.DatabaseURL = dataDir, dbURL
	srv, err := server.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("open server: %v", err)
	}
	return srv
}

func runBackupCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestBackupRestore backs up a demo installation with an account that deletes mail on its
// server, restores it into an empty data directory (and, on PostgreSQL runs, into an empty
// schema too), and checks that the demo still works, every stored password still opens and
// "E-Mails auf dem Server löschen" is off everywhere.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	srcDir := t.TempDir()
	srcURL := ""
	if storetest.IsPostgres() {
		srcURL, _ = storetest.URL(t)
	}
	src := openServer(t, srcDir, srcURL)
	if _, err := demo.Seed(ctx, src.Core, demoPassword); err != nil {
		t.Fatal(err)
	}
	tenant, err := src.DB.Read().TenantBySlug(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := core.AsOperatorIn(core.Actor{Kind: core.ActorSystem, Name: "test"}, tenant.ID)
	yes := true
	addr, host, user, pw := "info@celanio.example", "imap.celanio.example", "info", "empfangs-geheimnis"
	imap := core.ReceiveIMAP
	acc, err := src.Core.CreateAccount(ctx, admin, core.AccountInput{Address: &addr,
		Receive: &core.ReceiveInput{Type: &imap, Host: &host, Username: &user, Password: &pw, DeleteOnServer: &yes}})
	if err != nil {
		t.Fatal(err)
	}
	err = src.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertMessage(ctx, tenant.ID, store.Message{MailboxID: &acc.ID, Direction: store.DirectionIn, Journal: true,
			Raw: []byte("Subject: gesichert\r\n\r\nInhalt\r\n")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	mailboxesBefore, _ := src.DB.Read().Mailboxes(ctx, tenant.ID, store.MailboxesFilter{})
	src.Close(ctx)

	backup := filepath.Join(t.TempDir(), "postfach.backup")
	dataDirFlags := []string{"--data-dir", srcDir}
	if srcURL != "" {
		dataDirFlags = append(dataDirFlags, "--database-url", srcURL)
	}
	out, err := runBackupCmd(t, append([]string{"backup", "--out", backup, "--include-key"}, dataDirFlags...)...)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if _, err := runBackupCmd(t, append([]string{"backup", "--out", backup}, dataDirFlags...)...); err == nil {
		t.Errorf("backup overwrote an existing file")
	}

	type target struct{ name, dir, url string }
	targets := []target{{"sqlite", t.TempDir(), ""}}
	if storetest.IsPostgres() {
		u, _ := storetest.URL(t)
		targets = append(targets, target{"postgres", t.TempDir(), u})
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			args := []string{"restore", "--in", backup, "--data-dir", tg.dir}
			if tg.url != "" {
				args = append(args, "--database-url", tg.url)
			}
			out, err := runBackupCmd(t, args...)
			if err != nil {
				t.Fatalf("restore: %v\n%s", err, out)
			}
			if !strings.Contains(out, "is now OFF on every account") || !strings.Contains(out, addr) {
				t.Errorf("restore does not say that delete-on-server is off:\n%s", out)
			}
			if key, err := os.Stat(filepath.Join(tg.dir, "postfach.key")); err != nil || key.Mode().Perm() != 0o600 {
				t.Errorf("restored key: %v %v", key, err)
			}
			if out, err := runBackupCmd(t, args...); err == nil || !strings.Contains(err.Error(), "empty") {
				t.Errorf("second restore into the same database: %v\n%s", err, out)
			}

			dst := openServer(t, tg.dir, tg.url)
			defer dst.Close(ctx)
			if _, _, err := dst.Core.Login(ctx, core.LoginInput{Tenant: "demo", Login: "brenner", Password: demoPassword}); err != nil {
				t.Errorf("demo login after restore: %v", err)
			}
			if info, err := demo.Seed(ctx, dst.Core, demoPassword); err != nil || info.Created {
				t.Errorf("demo seed after restore: %+v %v", info, err)
			}
			got, err := dst.Core.Account(ctx, admin, acc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Receive.DeleteOnServer || !got.Receive.HasPassword || got.Messages != 1 {
				t.Errorf("restored account %+v", got)
			}
			m, _ := dst.DB.Read().Mailbox(ctx, tenant.ID, acc.ID)
			if p, err := dst.Core.ReceivePassword(m); err != nil || p != pw {
				t.Errorf("restored password %q %v", p, err)
			}
			all, _ := dst.DB.Read().Mailboxes(ctx, tenant.ID, store.MailboxesFilter{})
			if len(all) != len(mailboxesBefore) {
				t.Errorf("%d mailboxes after restore, %d before", len(all), len(mailboxesBefore))
			}
			for _, mb := range all {
				if as, _ := core.ParseAccountSettings(mb.Settings); as.Receive.DeleteOnServer {
					t.Errorf("%s still deletes on the server", mb.Address)
				}
			}
			// New rows get fresh ids after the restored ones.
			other := "neu@celanio.example"
			if n, err := dst.Core.CreateAccount(ctx, admin, core.AccountInput{Address: &other}); err != nil || n.ID <= acc.ID {
				t.Errorf("new account after restore: %+v %v", n, err)
			}
			entries, _ := dst.Core.Audit(ctx, admin, store.AuditFilter{Action: "account.restore"})
			if len(entries) != 1 {
				t.Errorf("restore audit entries: %+v", entries)
			}
		})
	}
}
