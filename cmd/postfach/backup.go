package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/store"
)

// cmdBackup writes a consistent snapshot of the database (C4). The secrets' master key is
// included only with --include-key: a backup with the key opens every stored password.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("postfach backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to (must not exist)")
	includeKey := fs.Bool("include-key", false, "include the master key that decrypts stored passwords")
	if err := cfg.Parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out FILE is required")
	}
	var key []byte
	if *includeKey {
		k, err := os.ReadFile(cfg.KeyFile())
		if err != nil {
			return fmt.Errorf("backup: read key: %w", err)
		}
		key = k
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		return err
	}
	defer db.Close()
	// Written under a temporary name and renamed after fsync: a crash never leaves a file
	// at --out that looks like a backup but is not one.
	tmp := *out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(*out); err == nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("backup: %s exists; choose a new file", *out)
	}
	res, err := db.Backup(ctx, f, key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(*out)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	var rows int64
	for _, n := range res.Rows {
		rows += n
	}
	fmt.Fprintf(stdout, "backup written to %s: %d tables, %d rows, schema version %d (%s)\n", *out, len(res.Rows), rows, res.Manifest.SchemaVersion, res.Manifest.Dialect)
	if key != nil {
		fmt.Fprintln(stdout, "the backup includes the master key: keep it as safe as the key file itself")
	} else {
		fmt.Fprintln(stdout, "the master key is NOT included: keep a copy of "+cfg.KeyFile()+" to restore stored passwords")
	}
	return nil
}

// cmdRestore loads a backup into an empty database and switches "E-Mails auf dem Server
// löschen" off on every account (C4).
func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("postfach restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "backup file to restore")
	if err := cfg.Parse(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("restore: --in FILE is required")
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	existingKey, keyErr := os.ReadFile(cfg.KeyFile())
	var switched []core.RestoredAccount
	res, err := db.Restore(ctx, f, func(tx *store.Tx, res store.RestoreResult) error {
		if res.Key != nil && keyErr == nil && !bytes.Equal(existingKey, res.Key) {
			return fmt.Errorf("restore: %s exists with another key; restore into an empty data directory", cfg.KeyFile())
		}
		var err error
		switched, err = core.DisableDeleteOnServer(ctx, tx)
		return err
	})
	if errors.Is(err, store.ErrNotEmpty) {
		return fmt.Errorf("restore: %w; restore into an empty data directory or database", err)
	}
	if err != nil {
		return err
	}
	if res.Key != nil && keyErr != nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if err := writeFileSync(cfg.KeyFile(), res.Key); err != nil {
			return fmt.Errorf("restore: write key: %w", err)
		}
	}
	var rows int64
	for _, n := range res.Rows {
		rows += n
	}
	fmt.Fprintf(stdout, "restored %d rows in %d tables from %s (backup of %s, schema version %d)\n", rows, len(res.Rows), *in, res.Manifest.CreatedAt, res.Manifest.SchemaVersion)
	fmt.Fprintf(stdout, "\"E-Mails auf dem Server löschen\" (delete mails on the server) is now OFF on every account; it was switched off on %d:\n", len(switched))
	for _, a := range switched {
		fmt.Fprintf(stdout, "  - %s (tenant %d, mailbox %d)\n", a.Address, a.TenantID, a.ID)
	}
	fmt.Fprintln(stdout, "switch it on again per account only in the installation that should fetch the mail")
	switch {
	case res.Key != nil:
		fmt.Fprintln(stdout, "the master key was restored from the backup")
	case keyErr != nil:
		fmt.Fprintln(stdout, "the backup holds no master key: copy postfach.key of the original data directory to "+cfg.KeyFile()+" before starting, or stored passwords cannot be decrypted")
	}
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
