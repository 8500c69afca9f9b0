package mailout

import (
	"bytes"
	"crypto"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	msg := []byte("From: Anna <anna@example.org>\r\nTo: bob@example.net\r\nSubject: Hallo\r\n" +
		"Date: Sat, 01 Mar 2025 12:00:00 +0000\r\nMessage-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nGuten Tag.\r\n")
	for _, alg := range []KeyAlgorithm{KeyRSA, KeyEd25519} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			key, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			pemKey, err := MarshalKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if key, err = ParseKey(pemKey); err != nil {
				t.Fatal(err)
			}
			record, err := DNSRecord(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(record, "v=DKIM1; k="+string(alg)+"; p=") {
				t.Errorf("record %q", record)
			}
			signed, err := Sign(msg, "example.org", "pf1", key)
			if err != nil {
				t.Fatal(err)
			}
			verify := func(m []byte) error {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(m), &dkim.VerifyOptions{
					LookupTXT: func(name string) ([]string, error) {
						if name != selectorRecordName("pf1", "example.org") {
							return nil, fmt.Errorf("unexpected lookup %s", name)
						}
						return []string{record}, nil
					},
				})
				if err != nil {
					return err
				}
				if len(vs) != 1 {
					return fmt.Errorf("%d signatures", len(vs))
				}
				return vs[0].Err
			}
			if err := verify(signed); err != nil {
				t.Fatalf("verify: %v\n%s", err, signed)
			}
			sig := string(signed[:bytes.Index(signed, []byte("\r\nFrom:"))])
			if !strings.Contains(sig, "c=relaxed/relaxed") || !strings.Contains(strings.ReplaceAll(sig, "\r\n ", ""), "h=From:Subject:Date:To:Message-ID:MIME-Version:Content-Type:From") {
				t.Errorf("signature header %q", sig)
			}
			// A second From added in transit breaks the signature (oversigning).
			forged := bytes.Replace(signed, []byte("\r\nTo:"), []byte("\r\nFrom: mallory@evil.test\r\nTo:"), 1)
			if err := verify(forged); err == nil {
				t.Error("added From header did not break the signature")
			}
		})
	}
	if _, err := Sign([]byte("Subject: x\r\n\r\nbody"), "example.org", "s", mustKey(t)); err == nil {
		t.Error("message without From signed")
	}
}

func mustKey(t *testing.T) crypto.Signer {
	k, err := GenerateKey(KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
