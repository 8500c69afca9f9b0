package dnscheck

import (
	"strings"
	"testing"
)

// The three seed messages, character for character, with "$$$" standing for
// the domain as in the manual.
func TestSeedMessagesExactGerman(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  MessageKey
		seed string
	}{
		{MsgSPFNeedsInclude, "Für die Domain $$$ ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen E-Mailversand angepasst werden muss."},
		{MsgNoMX, "Die Domain $$$ ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt."},
		{MsgUnreachable, "Die Domain $$$ ist nicht erreichbar."},
	}
	for _, tc := range tests {
		for _, lang := range []string{"de", "de-DE", "DE"} {
			got := newMessage(tc.key, "kunde.example").Text(lang)
			if want := strings.ReplaceAll(tc.seed, "$$$", "kunde.example"); got != want {
				t.Errorf("%s in %s:\n got %q\nwant %q", tc.key, lang, got, want)
			}
		}
	}
}

func TestCatalogComplete(t *testing.T) {
	t.Parallel()
	seen := make(map[MessageKey]bool)
	for _, entry := range Catalog() {
		if seen[entry.Key] {
			t.Errorf("duplicate key %s", entry.Key)
		}
		seen[entry.Key] = true
		if entry.DE == "" || entry.EN == "" || entry.DE == entry.EN {
			t.Errorf("%s: missing translation", entry.Key)
		}
		if strings.Count(entry.DE, "{") != strings.Count(entry.EN, "{") {
			t.Errorf("%s: placeholders differ between DE and EN", entry.Key)
		}
	}
	for _, outcome := range []Outcome{OutcomeOK, OutcomeSPFNeedsInclude, OutcomeSPFMissing, OutcomeNoMX,
		OutcomeUnreachable, OutcomeTemporaryFailure, OutcomeInvalidDomain} {
		if !seen[outcome.messageKey()] {
			t.Errorf("outcome %s has no text", outcome)
		}
	}
}

func TestMessageTextLanguages(t *testing.T) {
	t.Parallel()
	m := newMessage(MsgUnreachable, "kunde.example")
	if got := m.Text("en"); got != "The domain kunde.example cannot be reached." {
		t.Errorf("en: %q", got)
	}
	if got := m.Text("fr"); got != m.Text("en") {
		t.Errorf("other languages fall back to English: %q", got)
	}
	if got := (Message{Key: "unknown"}).Text("de"); got != "unknown" {
		t.Errorf("unknown key: %q", got)
	}
}
