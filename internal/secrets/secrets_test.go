package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyFileCreatedPrivateAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "postfach.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("key not reused: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("world-readable key accepted")
	}
}

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	box, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.SealString("tenant:1/mailbox-smtp", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("plaintext visible")
	}
	got, err := box.OpenString("tenant:1/mailbox-smtp", sealed)
	if err != nil || got != "hunter2" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := box.OpenString("tenant:2/mailbox-smtp", sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other context opened: %v", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open("tenant:1/mailbox-smtp", sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other key opened: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := box.Open("tenant:1/mailbox-smtp", sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered opened: %v", err)
	}
	if s, err := box.Seal("x", nil); s != nil || err != nil {
		t.Fatal("empty secret should seal to nil")
	}
}

func FuzzOpen(f *testing.F) {
	box, _ := New(bytes.Repeat([]byte{7}, 32))
	s, _ := box.Seal("c", []byte("v"))
	f.Add(s)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = box.Open("c", b) // must never panic
	})
}
