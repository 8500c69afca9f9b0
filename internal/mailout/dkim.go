package mailout

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// KeyAlgorithm names a DKIM key type.
type KeyAlgorithm string

const (
	// KeyRSA is RSA-2048, which every verifier understands.
	KeyRSA KeyAlgorithm = "rsa"
	// KeyEd25519 is RFC 8463; not yet verified everywhere, so sign with an
	// RSA key as well when using it.
	KeyEd25519 KeyAlgorithm = "ed25519"
)

// dkimHeaders are signed when present (RFC 6376 §5.4.1).
var dkimHeaders = []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// Sign returns msg with a DKIM-Signature header for domain and selector
// prepended (feature X5). Canonicalization is relaxed/relaxed, which
// survives the header re-folding some relays do. The headers above are
// signed when present, and From once more than present: that extra entry
// signs the absence of a second From (RFC 6376 §8.15), so nobody can add
// one later.
func Sign(msg []byte, domain, selector string, key crypto.Signer) ([]byte, error) {
	if domain == "" || selector == "" || key == nil {
		return nil, errors.New("dkim: domain, selector and key are required")
	}
	present, err := headerCounts(msg)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if present["From"] == 0 {
		return nil, errors.New("dkim: message has no From header")
	}
	var keys []string
	for _, k := range dkimHeaders {
		for range present[textproto.CanonicalMIMEHeaderKey(k)] {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "From")
	opts := &dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	}
	var out bytes.Buffer
	out.Grow(len(msg) + 600)
	if err := dkim.Sign(&out, bytes.NewReader(msg), opts); err != nil {
		return nil, fmt.Errorf("dkim: sign: %w", err)
	}
	return out.Bytes(), nil
}

// headerCounts counts the header fields of msg by canonical name.
func headerCounts(msg []byte) (map[string]int, error) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	counts := make(map[string]int, len(h))
	for k, v := range h {
		counts[k] = len(v)
	}
	return counts, nil
}

// GenerateKey creates a DKIM signing key: RSA-2048 or Ed25519.
func GenerateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case KeyRSA:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate rsa key: %w", err)
		}
		return k, nil
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate ed25519 key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("dkim: unknown key algorithm %q", alg)
}

// DNSRecord returns the TXT record value to publish at
// <selector>._domainkey.<domain> (RFC 6376 §3.6.1, RFC 8463 §4.2).
func DNSRecord(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", fmt.Errorf("dkim: marshal public key: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("dkim: unsupported public key type %T", pub)
}

// MarshalKey encodes a signing key as PKCS #8 PEM for storage (encrypted by
// the caller).
func MarshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dkim: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey decodes a key written by MarshalKey.
func ParseKey(pemData []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("dkim: no PKCS #8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dkim: parse key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("dkim: unsupported key type %T", k)
}

// selectorRecordName is where DNSRecord's value is published.
func selectorRecordName(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}
