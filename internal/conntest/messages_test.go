package conntest

import (
	"os"
	"regexp"
	"testing"
)

// TestEveryKeyHasTexts scans the package source for message keys, so a key
// used in code without a German and English text fails here.
var transliterated = regexp.MustCompile(`(?i)\b\w*(fuer|ueber|gueltig|moeglich|pruef|schluess|begruess|zeitueber|oeffn)\w*`)

func TestEveryKeyHasTexts(t *testing.T) {
	t.Parallel()
	table := messages()
	src, err := os.ReadFile("messages.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`"(conntest\.[a-z_.]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(keys) < 40 {
		t.Fatalf("found only %d keys", len(keys))
	}
	for _, k := range keys {
		key := k[1]
		text, ok := table[key]
		if !ok || text.de == "" || text.en == "" {
			t.Errorf("%s: missing text", key)
			continue
		}
		if Text(key, "de") != text.de || Text(key, "en") != text.en || Text(key, "fr") != text.en {
			t.Errorf("%s: Text returns the wrong language", key)
		}
		// Umlauts written out are a keyboard problem, not German.
		if m := transliterated.FindString(text.de); m != "" {
			t.Errorf("%s: %q looks like a transliterated umlaut", key, m)
		}
	}
	if Text("conntest.unknown", "de") != "conntest.unknown" {
		t.Error("unknown key not returned as is")
	}
	for _, s := range []Step{StepDNS, StepTCP, StepTLS, StepGreeting, StepSTARTTLS, StepAuth, StepFolder} {
		if StepName(s, "de") == string(s) && s != StepSTARTTLS {
			t.Errorf("step %s has no German name", s)
		}
	}
	if got := Text(KeyTLSExpired, "de"); got != "TLS-Handshake fehlgeschlagen: Das Zertifikat ist abgelaufen." {
		t.Errorf("expired text: %q", got)
	}
}
