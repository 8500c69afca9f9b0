// Package secrets encrypts stored credentials (SMTP/IMAP passwords, OAuth tokens, hosted
// mailbox passwords) with envelope encryption: every secret gets its own random data key,
// the value is sealed with AES-256-GCM under that key, and the data key is sealed under the
// master key. The master key lives in a file beside the data (mode 0600), never in the
// database, so a copy of the database alone reveals nothing.
//
// Sealed format (version 1): 0x01 | nonce(12) | sealed data key (32+16) | nonce(12) | sealed value.
// The context string (e.g. "tenant:3/mailbox-smtp") is bound as additional data, so a sealed
// value copied into another row or tenant does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	keySize   = 32
	nonceSize = 12
	version1  = 0x01
)

// ErrDecrypt is returned when a sealed value does not open: wrong key, wrong context or tampering.
var ErrDecrypt = errors.New("secrets: cannot decrypt (wrong key, wrong context or damaged value)")

// Box seals and opens secrets with one master key.
type Box struct {
	master cipher.AEAD
}

// LoadOrCreateKey reads the master key file, creating it with a fresh random key (mode 0600)
// when it does not exist. A key file with other permissions than 0600 is refused.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, keySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("secrets: generate key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secrets: create key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) { // another instance created it first
				return LoadOrCreateKey(path)
			}
			return nil, fmt.Errorf("secrets: create key file: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets: write key file: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets: sync key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("secrets: close key file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: read key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: stat key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets: key file %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("secrets: key file %s has %d bytes, want %d", path, len(key), keySize)
	}
	return key, nil
}

// New builds a Box from a 32-byte master key.
func New(masterKey []byte) (*Box, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	return &Box{master: aead}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("secrets: key must be %d bytes, got %d", keySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext bound to context. An empty plaintext seals to nil (no secret).
func (b *Box) Seal(context string, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, nil
	}
	dataKey := make([]byte, keySize)
	nonce1 := make([]byte, nonceSize)
	nonce2 := make([]byte, nonceSize)
	for _, buf := range [][]byte{dataKey, nonce1, nonce2} {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("secrets: random: %w", err)
		}
	}
	inner, err := newAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	ad := []byte(context)
	out := []byte{version1}
	out = append(out, nonce1...)
	out = b.master.Seal(out, nonce1, dataKey, ad)
	out = append(out, nonce2...)
	out = inner.Seal(out, nonce2, plaintext, ad)
	return out, nil
}

// Open decrypts a value sealed with the same context. nil opens to nil.
func (b *Box) Open(context string, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	wrappedLen := keySize + b.master.Overhead()
	if sealed[0] != version1 || len(sealed) < 1+nonceSize+wrappedLen+nonceSize {
		return nil, ErrDecrypt
	}
	ad := []byte(context)
	p := sealed[1:]
	nonce1, p := p[:nonceSize], p[nonceSize:]
	wrapped, p := p[:wrappedLen], p[wrappedLen:]
	nonce2, ct := p[:nonceSize], p[nonceSize:]
	dataKey, err := b.master.Open(nil, nonce1, wrapped, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	inner, err := newAEAD(dataKey)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := inner.Open(nil, nonce2, ct, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealString and OpenString are the string forms used for passwords.
func (b *Box) SealString(context, s string) ([]byte, error) { return b.Seal(context, []byte(s)) }

// OpenString opens a sealed password.
func (b *Box) OpenString(context string, sealed []byte) (string, error) {
	pt, err := b.Open(context, sealed)
	return string(pt), err
}
