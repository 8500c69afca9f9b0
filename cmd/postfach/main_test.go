package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"postfach/internal/store/storetest"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	dbURL, _ := storetest.URL(t)
	common := []string{"--data-dir", dir}
	if dbURL != "" {
		common = append(common, "--database-url", dbURL)
	}
	out, err := runCmd(t, "version")
	if err != nil || !strings.HasPrefix(out, "postfach ") {
		t.Fatalf("version: %q %v", out, err)
	}
	out, err = runCmd(t, append([]string{"migrate"}, common...)...)
	if err != nil || !strings.Contains(out, "applied migrations") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	out, err = runCmd(t, append([]string{"migrate"}, common...)...)
	if err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %q %v", out, err)
	}
	steps := [][]string{
		{"admin", "create-operator", "--login", "op", "--password", "operator-password"},
		{"admin", "create-tenant", "--slug", "acme", "--name", "ACME GmbH", "--quota", "3"},
		{"admin", "create-user", "--tenant", "acme", "--login", "anna", "--name", "Anna", "--password", "anna-password-1", "--role", "admin", "--email", "anna@acme.example"},
	}
	for _, s := range steps {
		out, err := runCmd(t, append(s, common...)...)
		if err != nil || !strings.Contains(out, "created") {
			t.Fatalf("%v: %q %v", s, out, err)
		}
	}
	// Bad input: a clear message naming the flag, nothing created.
	_, err = runCmd(t, append([]string{"admin", "create-user", "--tenant", "acme", "--login", "bob", "--name", "Bob", "--password", "bob-password-1", "--email", "not-an-address"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "--email") || !strings.Contains(err.Error(), "not a valid e-mail address") {
		t.Fatalf("bad email: %v", err)
	}
	_, err = runCmd(t, append([]string{"admin", "create-tenant", "--slug", "Not A Slug", "--name", "x"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "--slug") {
		t.Fatalf("bad slug: %v", err)
	}
	_, err = runCmd(t, "serve", "--http-addr", "nonsense", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "POSTFACH_HTTP_ADDR") {
		t.Fatalf("bad flag value: %v", err)
	}
	if _, err := runCmd(t, "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
}
