package dnscheck

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// DKIMKey is a parsed DKIM key record (RFC 6376 section 3.6.1; ed25519 from
// RFC 8463).
type DKIMKey struct {
	KeyType string `json:"key_type"` // "rsa" or "ed25519"
	// PublicKey is the decoded p= value: DER SubjectPublicKeyInfo for RSA,
	// the raw 32 bytes for ed25519. Empty when revoked.
	PublicKey      []byte   `json:"public_key,omitempty"`
	Revoked        bool     `json:"revoked,omitempty"`
	KeyBits        int      `json:"key_bits,omitempty"`
	Testing        bool     `json:"testing,omitempty"` // t=y
	HashAlgorithms []string `json:"hash_algorithms,omitempty"`
}

// Errors of ParseDKIMKeyRecord.
var (
	ErrDKIMVersion    = errors.New("DKIM record: v= must be first and DKIM1")
	ErrDKIMKeyType    = errors.New("DKIM record: unsupported key type")
	ErrDKIMNoKey      = errors.New("DKIM record: no p= tag")
	ErrDKIMBadKey     = errors.New("DKIM record: public key does not decode")
	ErrDKIMNotForMail = errors.New("DKIM record: service type excludes email")
)

// ParseDKIMKeyRecord parses the TXT record published at
// <selector>._domainkey.<domain>.
func ParseDKIMKeyRecord(record string) (DKIMKey, error) {
	key := DKIMKey{KeyType: "rsa"} // k= defaults to rsa (RFC 6376 section 3.6.1)
	tags, err := parseTagList(record)
	if err != nil {
		return DKIMKey{}, err
	}
	var publicKey *string
	for i, t := range tags {
		switch t.name {
		case "v":
			// v= is optional, but if present it must be first and "DKIM1".
			if i != 0 || t.value != "DKIM1" {
				return DKIMKey{}, fmt.Errorf("dnscheck: %w", ErrDKIMVersion)
			}
		case "k":
			key.KeyType = strings.ToLower(t.value)
			if key.KeyType != "rsa" && key.KeyType != "ed25519" {
				return DKIMKey{}, fmt.Errorf("dnscheck: %q: %w", t.value, ErrDKIMKeyType)
			}
		case "p":
			value := t.value
			publicKey = &value
		case "h":
			for _, h := range strings.Split(t.value, ":") {
				if h = strings.TrimSpace(h); h != "" {
					key.HashAlgorithms = append(key.HashAlgorithms, strings.ToLower(h))
				}
			}
		case "s":
			if !serviceAllowsEmail(t.value) {
				return DKIMKey{}, fmt.Errorf("dnscheck: %w", ErrDKIMNotForMail)
			}
		case "t":
			for _, flag := range strings.Split(t.value, ":") {
				if strings.TrimSpace(flag) == "y" {
					key.Testing = true
				}
			}
		}
	}
	if publicKey == nil {
		return DKIMKey{}, fmt.Errorf("dnscheck: %w", ErrDKIMNoKey)
	}
	// Base64 in a tag value may contain folding whitespace (RFC 6376 section 3.6.1).
	encoded := strings.Join(strings.Fields(*publicKey), "")
	if encoded == "" {
		key.Revoked = true
		return key, nil
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return DKIMKey{}, fmt.Errorf("dnscheck: %w: %v", ErrDKIMBadKey, err)
	}
	key.PublicKey = raw
	switch key.KeyType {
	case "ed25519":
		if len(raw) != ed25519.PublicKeySize {
			return DKIMKey{}, fmt.Errorf("dnscheck: ed25519 key of %d bytes: %w", len(raw), ErrDKIMBadKey)
		}
		key.KeyBits = 256
	default:
		rsaKey, err := parseRSAPublicKey(raw)
		if err != nil {
			return DKIMKey{}, err
		}
		key.KeyBits = rsaKey.N.BitLen()
	}
	return key, nil
}

// parseRSAPublicKey accepts SubjectPublicKeyInfo as RFC 6376 section 3.6.1
// requires, and the bare PKCS#1 form some generators publish.
func parseRSAPublicKey(raw []byte) (*rsa.PublicKey, error) {
	if parsed, err := x509.ParsePKIXPublicKey(raw); err == nil {
		if rsaKey, ok := parsed.(*rsa.PublicKey); ok {
			return rsaKey, nil
		}
		return nil, fmt.Errorf("dnscheck: k=rsa but key is %T: %w", parsed, ErrDKIMBadKey)
	}
	rsaKey, err := x509.ParsePKCS1PublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("dnscheck: %w: %v", ErrDKIMBadKey, err)
	}
	return rsaKey, nil
}

func serviceAllowsEmail(value string) bool {
	for _, service := range strings.Split(value, ":") {
		service = strings.TrimSpace(service)
		if service == "*" || strings.EqualFold(service, "email") {
			return true
		}
	}
	return false
}

// DKIMPublicKeyBytes converts a signing key's public half into the key type
// and p= bytes published in DNS, so signing code can fill
// Config.DKIMPublicKeys and the UI can show the record to publish.
func DKIMPublicKeyBytes(public crypto.PublicKey) (keyType string, p []byte, err error) {
	switch key := public.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			return "", nil, fmt.Errorf("dnscheck: marshal rsa key: %w", err)
		}
		return "rsa", der, nil
	case ed25519.PublicKey:
		return "ed25519", bytes.Clone(key), nil
	default:
		return "", nil, fmt.Errorf("dnscheck: %T: %w", public, ErrDKIMKeyType)
	}
}

// FormatDKIMKeyRecord is the TXT record that publishes a key.
func FormatDKIMKeyRecord(keyType string, p []byte) string {
	return "v=DKIM1; k=" + keyType + "; p=" + base64.StdEncoding.EncodeToString(p)
}

// keyTypeOf guesses the k= value for our configured p= bytes.
func keyTypeOf(p []byte) string {
	if len(p) == ed25519.PublicKeySize {
		return "ed25519"
	}
	return "rsa"
}

// DKIMStatus is the verdict for one selector.
type DKIMStatus string

const (
	DKIMOK          DKIMStatus = "ok"        // key published (and equal to ours, when known)
	DKIMMissing     DKIMStatus = "missing"   // no TXT record at the selector
	DKIMMismatch    DKIMStatus = "mismatch"  // a valid key, but not ours
	DKIMInvalid     DKIMStatus = "invalid"   // the record does not parse
	DKIMRevoked     DKIMStatus = "revoked"   // p= is empty
	DKIMTemporary   DKIMStatus = "temporary" // lookup failed on our side
	DKIMNoSelectors DKIMStatus = "no_selectors"
	DKIMNotChecked  DKIMStatus = "not_checked" // domain does not resolve
)

// DKIMSelectorResult is the check of one selector.
type DKIMSelectorResult struct {
	Selector string     `json:"selector"`
	Name     string     `json:"name"` // <selector>._domainkey.<domain>
	Status   DKIMStatus `json:"status"`
	Record   string     `json:"record,omitempty"`
	Key      *DKIMKey   `json:"key,omitempty"`
	Error    string     `json:"error,omitempty"`
	// Suggested is the record to publish when we know our key and the
	// published one is missing or different.
	Suggested string  `json:"suggested,omitempty"`
	Advice    Message `json:"advice"`
}

// DKIMResult is the DKIM part of a Report. Status is DKIMOK when at least one
// selector is usable; otherwise the first selector's status.
type DKIMResult struct {
	Status    DKIMStatus           `json:"status"`
	Selectors []DKIMSelectorResult `json:"selectors,omitempty"`
	Advice    Message              `json:"advice"`
}

func (c *Checker) checkDKIMSelector(ctx context.Context, resolver Resolver, domain, ascii, selector string) DKIMSelectorResult {
	name := selector + "._domainkey." + ascii
	result := DKIMSelectorResult{Selector: selector, Name: name}
	ours, haveOurs := c.cfg.DKIMPublicKeys[selector]
	if haveOurs {
		result.Suggested = FormatDKIMKeyRecord(keyTypeOf(ours), ours)
	}
	txts, err := resolver.LookupTXT(ctx, canonicalName(name))
	switch classify(err) {
	case lookupTemporary:
		result.Status = DKIMTemporary
		result.Error = err.Error()
		result.Advice = newMessage(MsgAdviceDKIMTemporary, domain, "name", name)
		return result
	case lookupNotFound:
		txts = nil
	}
	var parseErr error
	for _, txt := range txts {
		key, err := ParseDKIMKeyRecord(txt)
		if err != nil {
			parseErr = err
			result.Record = txt
			continue
		}
		result.Record, result.Key, parseErr = txt, &key, nil
		break
	}
	switch {
	case len(txts) == 0:
		result.Status = DKIMMissing
	case result.Key == nil:
		result.Status = DKIMInvalid
		result.Error = parseErr.Error()
	case result.Key.Revoked:
		result.Status = DKIMRevoked
	case haveOurs && !bytes.Equal(result.Key.PublicKey, ours):
		result.Status = DKIMMismatch
	default:
		result.Status = DKIMOK
		result.Suggested = ""
	}
	switch result.Status {
	case DKIMOK:
		result.Advice = newMessage(MsgAdviceDKIMOK, domain, "name", name)
	case DKIMMismatch:
		result.Advice = newMessage(MsgAdviceDKIMMismatch, domain, "name", name, "record", result.Suggested)
	case DKIMRevoked:
		result.Advice = newMessage(MsgAdviceDKIMRevoked, domain, "name", name)
	case DKIMInvalid:
		result.Advice = newMessage(MsgAdviceDKIMInvalid, domain, "name", name)
	default:
		if result.Suggested != "" {
			result.Advice = newMessage(MsgAdviceDKIMPublish, domain, "name", name, "record", result.Suggested)
		} else {
			result.Advice = newMessage(MsgAdviceDKIMMissing, domain, "name", name)
		}
	}
	return result
}

func summarizeDKIM(domain string, selectors []DKIMSelectorResult) DKIMResult {
	if len(selectors) == 0 {
		return DKIMResult{Status: DKIMNoSelectors, Advice: newMessage(MsgAdviceDKIMNoSelector, domain)}
	}
	for _, selector := range selectors {
		if selector.Status == DKIMOK {
			return DKIMResult{Status: DKIMOK, Selectors: selectors, Advice: selector.Advice}
		}
	}
	return DKIMResult{Status: selectors[0].Status, Selectors: selectors, Advice: selectors[0].Advice}
}
