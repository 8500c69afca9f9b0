package dnscheck

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSuggestSPFRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		record  string
		want    string
		changed bool
		err     error
	}{
		{"v=spf1 mx -all", "v=spf1 mx include:_spf.postfach.example -all", true, nil},
		{"v=spf1 ip4:192.0.2.0/24 ~all", "v=spf1 ip4:192.0.2.0/24 include:_spf.postfach.example ~all", true, nil},
		{"V=SPF1 a mx ?all", "v=spf1 a mx include:_spf.postfach.example ?all", true, nil},
		{"v=spf1 mx include:_spf.postfach.example -all", "v=spf1 mx include:_spf.postfach.example -all", false, nil},
		{"v=spf1 +include:_SPF.Postfach.Example. -all", "v=spf1 +include:_SPF.Postfach.Example. -all", false, nil},
		{"v=spf1 -all include:_spf.postfach.example", "v=spf1 include:_spf.postfach.example -all", true, nil},
		{"v=spf1 -include:_spf.postfach.example mx -all", "v=spf1 mx include:_spf.postfach.example -all", true, nil},
		{"v=spf1 redirect=_spf.provider.example", "v=spf1 include:_spf.postfach.example redirect=_spf.provider.example", true, nil},
		{"v=spf1 mx redirect=_spf.provider.example exp=explain.example", "v=spf1 mx include:_spf.postfach.example redirect=_spf.provider.example exp=explain.example", true, nil},
		{"v=spf1 redirect=_spf.postfach.example", "v=spf1 redirect=_spf.postfach.example", false, nil},
		{"v=spf1 mx", "v=spf1 mx include:_spf.postfach.example", true, nil},
		{"v=spf1", "v=spf1 include:_spf.postfach.example", true, nil},
		{"v=spf1  mx   -all  ", "v=spf1 mx include:_spf.postfach.example -all", true, nil},
		{"v=spf1 exists:%{i}._spf.%{d} -all", "v=spf1 exists:%{i}._spf.%{d} include:_spf.postfach.example -all", true, nil},
		{"v=spf10 mx -all", "", false, ErrNotSPF},
		{"", "", false, ErrNotSPF},
		{"google-site-verification=x", "", false, ErrNotSPF},
	}
	for _, tc := range tests {
		got, changed, err := SuggestSPFRecord(tc.record, testInclude)
		if !errors.Is(err, tc.err) || got != tc.want || changed != tc.changed {
			t.Errorf("SuggestSPFRecord(%q) = %q, %v, %v; want %q, %v, %v", tc.record, got, changed, err, tc.want, tc.changed, tc.err)
		}
	}
}

func FuzzSuggestSPFRecord(f *testing.F) {
	for _, seed := range []string{
		"v=spf1 mx -all", "v=spf1 -all include:_spf.postfach.example", "v=spf1 redirect=x.example",
		"v=spf1 include:_spf.postfach.example", "v=spf1 a:%{d} ip6:2001:db8::/32 ?all exp=e", "v=spf1 =x :y /24 ~",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, record string) {
		got, changed, err := SuggestSPFRecord(record, testInclude)
		if err != nil {
			return
		}
		if !strings.HasPrefix(strings.ToLower(got), "v=spf1") {
			t.Fatalf("suggestion %q lost the version", got)
		}
		if !changed {
			if got != record {
				t.Fatalf("unchanged but different: %q -> %q", record, got)
			}
			return
		}
		if !strings.Contains(got, "include:"+testInclude) {
			t.Fatalf("suggestion %q lacks our include", got)
		}
		again, changedAgain, err := SuggestSPFRecord(got, testInclude)
		if err != nil || changedAgain || again != got {
			t.Fatalf("not idempotent: %q -> %q (%v, %v)", got, again, changedAgain, err)
		}
		if n, m := len(strings.Fields(record)), len(strings.Fields(got)); m > n+1 {
			t.Fatalf("suggestion grew by %d terms", m-n)
		}
	})
}

func TestParseDKIMKeyRecord(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaB64 := base64.StdEncoding.EncodeToString(rsaDER)
	pkcs1B64 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey))
	edB64 := base64.StdEncoding.EncodeToString(ourDKIMKey)
	folded := rsaB64[:40] + " \t " + rsaB64[40:]
	tests := []struct {
		record  string
		keyType string
		bits    int
		revoked bool
		testing bool
		err     error
	}{
		{"v=DKIM1; k=rsa; p=" + rsaB64, "rsa", 1024, false, false, nil},
		{"p=" + rsaB64, "rsa", 1024, false, false, nil},
		{"v=DKIM1; p=" + folded + ";", "rsa", 1024, false, false, nil},
		{"v=DKIM1; k=rsa; p=" + pkcs1B64, "rsa", 1024, false, false, nil},
		{"v=DKIM1; k=ed25519; t=y:s; p=" + edB64, "ed25519", 256, false, true, nil},
		{"v=DKIM1; h=sha256; s=email; p=" + rsaB64, "rsa", 1024, false, false, nil},
		{"v=DKIM1; p=", "rsa", 0, true, false, nil},
		{"k=rsa; v=DKIM1; p=" + rsaB64, "", 0, false, false, ErrDKIMVersion},
		{"v=DKIM2; p=" + rsaB64, "", 0, false, false, ErrDKIMVersion},
		{"v=DKIM1; k=dsa; p=" + rsaB64, "", 0, false, false, ErrDKIMKeyType},
		{"v=DKIM1; k=rsa", "", 0, false, false, ErrDKIMNoKey},
		{"v=DKIM1; p=!!!", "", 0, false, false, ErrDKIMBadKey},
		{"v=DKIM1; k=ed25519; p=" + rsaB64, "", 0, false, false, ErrDKIMBadKey},
		{"v=DKIM1; k=rsa; p=" + edB64, "", 0, false, false, ErrDKIMBadKey},
		{"v=DKIM1; s=tlsrpt; p=" + rsaB64, "", 0, false, false, ErrDKIMNotForMail},
		{"v=DKIM1; p=a; p=b", "", 0, false, false, ErrMalformedTagList},
		{"v=DKIM1;; p=" + rsaB64, "", 0, false, false, ErrMalformedTagList},
		{"garbage", "", 0, false, false, ErrMalformedTagList},
	}
	for _, tc := range tests {
		key, err := ParseDKIMKeyRecord(tc.record)
		if !errors.Is(err, tc.err) {
			t.Errorf("%.40q: err = %v, want %v", tc.record, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if key.KeyType != tc.keyType || key.KeyBits != tc.bits || key.Revoked != tc.revoked || key.Testing != tc.testing {
			t.Errorf("%.40q: %+v", tc.record, key)
		}
	}
}

func TestDKIMPublicKeyBytesRoundTrip(t *testing.T) {
	t.Parallel()
	keyType, p, err := DKIMPublicKeyBytes(ourDKIMKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseDKIMKeyRecord(FormatDKIMKeyRecord(keyType, p))
	if err != nil || key.KeyType != "ed25519" || !bytes.Equal(key.PublicKey, ourDKIMKey) {
		t.Fatalf("round trip: %+v, %v", key, err)
	}
	if _, _, err := DKIMPublicKeyBytes("not a key"); !errors.Is(err, ErrDKIMKeyType) {
		t.Errorf("wrong key type: %v", err)
	}
}

func FuzzParseDKIMKeyRecord(f *testing.F) {
	f.Add("v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(ourDKIMKey))
	f.Add("v=DKIM1; p=")
	f.Add("v=DKIM1; k=rsa; h=sha1:sha256; t=y; p=MIGf")
	f.Add("p = a b c ; ; x=")
	f.Fuzz(func(t *testing.T, record string) {
		key, err := ParseDKIMKeyRecord(record)
		if err != nil || key.Revoked {
			return
		}
		// A key that parsed must survive being republished.
		again, err := ParseDKIMKeyRecord(FormatDKIMKeyRecord(key.KeyType, key.PublicKey))
		if err != nil || !bytes.Equal(again.PublicKey, key.PublicKey) || again.KeyBits != key.KeyBits {
			t.Fatalf("republished %q: %+v, %v", record, again, err)
		}
		if key.KeyType == "ed25519" && len(key.PublicKey) != ed25519.PublicKeySize {
			t.Fatalf("ed25519 key of %d bytes accepted", len(key.PublicKey))
		}
	})
}

func TestParseDMARCRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		record string
		want   DMARCRecord
		err    error
	}{
		{"v=DMARC1; p=reject", DMARCRecord{Policy: "reject", SubdomainPolicy: "reject", ADKIM: "r", ASPF: "r", Percent: 100}, nil},
		{"v=DMARC1;p=Quarantine;sp=none;adkim=s;aspf=s;pct=25;rua=mailto:a@x.example,mailto:b@x.example!10m;ruf=mailto:f@x.example;fo=1",
			DMARCRecord{Policy: "quarantine", SubdomainPolicy: "none", ADKIM: "s", ASPF: "s", Percent: 25,
				RUA: []string{"mailto:a@x.example", "mailto:b@x.example!10m"}, RUF: []string{"mailto:f@x.example"}}, nil},
		{"v=DMARC1; p=none; pct=150; adkim=x; future=1", DMARCRecord{Policy: "none", SubdomainPolicy: "none", ADKIM: "r", ASPF: "r", Percent: 100,
			Warnings: []string{"pct", "adkim"}}, nil},
		{"v=DMARC1; rua=mailto:r@x.example", DMARCRecord{Policy: "none", SubdomainPolicy: "none", ADKIM: "r", ASPF: "r", Percent: 100,
			RUA: []string{"mailto:r@x.example"}, PolicyAssumed: true}, nil},
		{"v=DMARC1; p=bogus; rua=mailto:r@x.example", DMARCRecord{Policy: "none", SubdomainPolicy: "none", ADKIM: "r", ASPF: "r", Percent: 100,
			RUA: []string{"mailto:r@x.example"}, PolicyAssumed: true}, nil},
		{"v=DMARC1; p=reject; sp=bogus", DMARCRecord{}, ErrDMARCPolicy},
		{"v=DMARC1; p=bogus", DMARCRecord{}, ErrDMARCPolicy},
		{"v=DMARC1", DMARCRecord{}, ErrDMARCPolicy},
		{"p=reject; v=DMARC1", DMARCRecord{}, ErrDMARCVersion},
		{"v=dmarc1; p=reject", DMARCRecord{}, ErrDMARCVersion},
		{"v=DMARC1; p=reject; p=none", DMARCRecord{}, ErrMalformedTagList},
		{"v=DMARC1 p=reject", DMARCRecord{}, ErrDMARCVersion},
	}
	for _, tc := range tests {
		got, err := ParseDMARCRecord(tc.record)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err = %v, want %v", tc.record, err, tc.err)
			continue
		}
		if err == nil && !equalDMARC(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.record, got, tc.want)
		}
	}
}

func equalDMARC(a, b DMARCRecord) bool {
	return a.Policy == b.Policy && a.SubdomainPolicy == b.SubdomainPolicy && a.ADKIM == b.ADKIM && a.ASPF == b.ASPF &&
		a.Percent == b.Percent && a.PolicyAssumed == b.PolicyAssumed && strings.Join(a.RUA, " ") == strings.Join(b.RUA, " ") &&
		strings.Join(a.RUF, " ") == strings.Join(b.RUF, " ") && strings.Join(a.Warnings, " ") == strings.Join(b.Warnings, " ")
}

func FuzzParseDMARCRecord(f *testing.F) {
	f.Add("v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=10; rua=mailto:a@b.example")
	f.Add("v=DMARC1; rua=mailto:x@y.example")
	f.Add("v=DMARC1;p=none;")
	f.Add("v=DMARC1; p=quarantine; pct=-1; x=;")
	f.Fuzz(func(t *testing.T, record string) {
		rec, err := ParseDMARCRecord(record)
		if err != nil {
			return
		}
		for _, policy := range []string{rec.Policy, rec.SubdomainPolicy} {
			if policy != "none" && policy != "quarantine" && policy != "reject" {
				t.Fatalf("%q: policy %q", record, policy)
			}
		}
		if rec.Percent < 0 || rec.Percent > 100 || (rec.ADKIM != "r" && rec.ADKIM != "s") || (rec.ASPF != "r" && rec.ASPF != "s") {
			t.Fatalf("%q: out of range %+v", record, rec)
		}
	})
}

func TestNormalizeDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		input, display, ascii string
		ok                    bool
	}{
		{"Example.COM.", "example.com", "example.com", true},
		{" büro.example ", "büro.example", "xn--bro-hoa.example", true},
		{"user@example.com", "user@example.com", "", false},
		{"localhost", "localhost", "", false},
		{"", "", "", false},
		{"exa mple.com", "exa mple.com", "", false},
		{strings.Repeat("a", 64) + ".example", strings.Repeat("a", 64) + ".example", "", false},
	}
	for _, tc := range tests {
		display, ascii, err := normalizeDomain(tc.input)
		if display != tc.display || ascii != tc.ascii || (err == nil) != tc.ok {
			t.Errorf("normalizeDomain(%q) = %q, %q, %v", tc.input, display, ascii, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("normalizeDomain(%q): error %v is not ErrInvalidDomain", tc.input, err)
		}
	}
}
