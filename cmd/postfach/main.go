// Command postfach is the whole product in one binary: `serve` runs the web UI, the API and
// the mail listeners; `migrate`, `admin`, `check-domain` and `version` are the operator's
// tools. This file only parses the command line and wires packages together.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/demo"
	"postfach/internal/dnscheck"
	"postfach/internal/server"
	"postfach/internal/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Postfach — mailbox and communication manager

Usage:
  postfach serve [flags]            run the web UI, the JSON API and the mail listeners
  postfach serve --demo             … with a demo tenant on an embedded SQLite database
  postfach migrate [flags]          bring the database schema up to date
  postfach admin create-operator --login L --password P
  postfach admin create-tenant --slug S --name N [--quota N]
  postfach admin create-user --tenant S --login L --name N --password P [--email E] [--role admin|user]
  postfach check-domain [--lang de|en] DOMAIN...
  postfach backup --out FILE [--include-key]
  postfach restore --in FILE        into an empty data directory or database
  postfach version

Every flag can also be set as an environment variable: --data-dir is POSTFACH_DATA_DIR.
Run "postfach serve -h" for the settings.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "postfach:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], stdout, stderr)
	case "admin":
		return cmdAdmin(ctx, args[1:], stdout, stderr)
	case "backup":
		return cmdBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return cmdRestore(ctx, args[1:], stdout, stderr)
	case "check-domain":
		return cmdCheckDomain(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "postfach", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func parseConfig(name string, args []string, stderr io.Writer) (config.Config, []string, error) {
	cfg := config.Default()
	fs := flag.NewFlagSet("postfach "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := cfg.Parse(fs, args); err != nil {
		return cfg, nil, err
	}
	return cfg, fs.Args(), nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parseConfig("serve", args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	srv, err := server.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	var demoInfo *demo.Info
	if cfg.Demo {
		pw := cfg.DemoPassword
		if pw == "" {
			pw = randomPassword()
		}
		info, err := demo.Seed(ctx, srv.Core, pw)
		if err != nil {
			return explain(srv.Core, err)
		}
		if !info.Created {
			pw = "(set on the first start with this data directory)"
		}
		demoInfo = &info
		demoInfo.Password = pw
	}
	if err := srv.ListenHTTP(); err != nil {
		return err
	}
	if err := srv.ListenSMTP(); err != nil {
		return err
	}
	if err := srv.ListenMail(); err != nil {
		return err
	}
	srv.StartDomainChecks(ctx)
	srv.StartWebhooks(ctx)
	srv.StartFetching(ctx)
	if err := srv.StartQueue(ctx); err != nil {
		return err
	}
	log.Info("postfach started", "version", version, "http", srv.HTTPAddr, "database", srv.DB.Dialect().String())
	if demoInfo != nil {
		printDemo(stdout, srv.HTTPAddr, *demoInfo)
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Close(shutdownCtx)
}

func printDemo(stdout io.Writer, httpAddr string, info demo.Info) {
	fmt.Fprintf(stdout, `
Postfach demo is running: open http://%s/
  Mandant (tenant): %s
  Tenant admin:     %s
  Users:            %s
  Operator:         %s (leave the tenant field empty)
  Password (all):   %s
`, httpAddr, info.Tenant, info.Admin, strings.Join(info.Users, ", "), info.Operator, info.Password)
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parseConfig("migrate", args, stderr)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	v, _ := db.SchemaVersion(ctx)
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema is up to date (version %d, %s)\n", v, db.Dialect())
	} else {
		fmt.Fprintf(stdout, "applied migrations %v; schema version %d (%s)\n", applied, v, db.Dialect())
	}
	return nil
}

func cmdCheckDomain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("postfach check-domain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lang := fs.String("lang", "de", "language of the messages: de or en")
	if err := cfg.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("check-domain: name at least one domain")
	}
	checker := dnscheck.NewChecker(net.DefaultResolver, dnscheck.Config{SPFInclude: cfg.SPFInclude, ReturnPathDomain: cfg.InboundDomain})
	failed := false
	for _, r := range checker.CheckMany(ctx, fs.Args(), 8) {
		fmt.Fprintf(stdout, "%s: %s\n", r.Domain, r.Outcome)
		for _, f := range r.Findings {
			fmt.Fprintf(stdout, "  - %s\n", f.Text(*lang))
		}
		if r.Outcome != dnscheck.OutcomeOK {
			failed = true
		}
	}
	if failed {
		return errors.New("check-domain: at least one domain needs attention")
	}
	return nil
}

// cmdAdmin creates operators, tenants and users from the shell (first setup, recovery).
func cmdAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("admin: name a subcommand")
	}
	sub := args[0]
	cfg := config.Default()
	fs := flag.NewFlagSet("postfach admin "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	login := fs.String("login", "", "login name")
	password := fs.String("password", "", "password (at least 10 characters)")
	name := fs.String("name", "", "display name")
	slug := fs.String("slug", "", "tenant short name (lower case, digits, hyphens)")
	tenant := fs.String("tenant", "", "tenant short name")
	email := fs.String("email", "", "e-mail address")
	role := fs.String("role", "user", "admin or user")
	quota := fs.Int("quota", 1, "number of additional mailboxes the tenant may create")
	if err := cfg.Parse(fs, args[1:]); err != nil {
		return err
	}
	srv, err := server.Open(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	svc := srv.Core
	system := core.Actor{Kind: core.ActorSystem, Name: "cli"}
	switch sub {
	case "create-operator":
		if *login == "" || len(*password) < 10 {
			return errors.New("admin create-operator: --login and a --password of at least 10 characters are required")
		}
		hash, err := core.HashPassword(*password)
		if err != nil {
			return err
		}
		err = svc.DB.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateOperator(ctx, store.Operator{Login: *login, DisplayName: *login, PasswordHash: hash})
			return err
		})
		if err != nil {
			return fmt.Errorf("admin create-operator: %w", err)
		}
		fmt.Fprintf(stdout, "operator %q created; log in with an empty tenant field\n", *login)
	case "create-tenant":
		t, err := svc.CreateTenant(ctx, system, core.TenantInput{Name: name, Slug: slug, MailboxQuota: quota})
		if err != nil {
			return explain(svc, err)
		}
		fmt.Fprintf(stdout, "tenant %q created (id %d, quota %d)\n", t.Slug, t.ID, t.MailboxQuota)
	case "create-user":
		t, err := svc.DB.Read().TenantBySlug(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("admin create-user: no tenant %q", *tenant)
		}
		a, _ := core.AsOperatorIn(system, t.ID)
		in := core.UserInput{Login: login, DisplayName: name, Role: role, Password: password}
		if *email != "" {
			in.Email = email
		}
		u, err := svc.CreateUser(ctx, a, in)
		if err != nil {
			return explain(svc, err)
		}
		fmt.Fprintf(stdout, "user %q created in tenant %q (id %d, role %s)\n", u.Login, t.Slug, u.ID, u.Role)
	default:
		return fmt.Errorf("admin: unknown subcommand %q", sub)
	}
	return nil
}

// explain turns a core error into the English text an operator reads on the shell.
func explain(svc *core.Service, err error) error {
	if fields := core.FieldErrors(err); len(fields) > 0 {
		var parts []string
		for _, f := range fields {
			parts = append(parts, "--"+strings.ReplaceAll(f.Field, "_", "-")+": "+svc.Text.T("en", f.Key, f.Params))
		}
		return errors.New(strings.Join(parts, "; "))
	}
	ce := core.AsError(err)
	if ce.Status >= 500 {
		return err
	}
	return errors.New(svc.Text.T("en", ce.Key, ce.Params))
}
