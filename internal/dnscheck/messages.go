package dnscheck

import "strings"

// MessageKey names one user-facing text. The UI may translate by key with
// the Params of a Message, or call Message.Text for the German and English
// texts kept here.
type MessageKey string

// Headline messages, one per Outcome. The first three are the seed's texts.
const (
	MsgSPFNeedsInclude  MessageKey = "dnscheck.spf_needs_include"
	MsgNoMX             MessageKey = "dnscheck.no_mx"
	MsgUnreachable      MessageKey = "dnscheck.unreachable"
	MsgOK               MessageKey = "dnscheck.ok"
	MsgSPFMissing       MessageKey = "dnscheck.spf_missing"
	MsgTemporaryFailure MessageKey = "dnscheck.temporary_failure"
	MsgInvalidDomain    MessageKey = "dnscheck.invalid_domain"
)

// Advice messages: one line per section of the report.
const (
	MsgAdviceSPFOK          MessageKey = "dnscheck.advice.spf_ok"
	MsgAdviceSPFCreate      MessageKey = "dnscheck.advice.spf_create"
	MsgAdviceSPFReplace     MessageKey = "dnscheck.advice.spf_replace"
	MsgAdviceSPFMultiple    MessageKey = "dnscheck.advice.spf_multiple"
	MsgAdviceSPFEvaluation  MessageKey = "dnscheck.advice.spf_evaluation"
	MsgAdviceSPFTemporary   MessageKey = "dnscheck.advice.spf_temporary"
	MsgAdviceMXOK           MessageKey = "dnscheck.advice.mx_ok"
	MsgAdviceMXMissing      MessageKey = "dnscheck.advice.mx_missing"
	MsgAdviceMXNull         MessageKey = "dnscheck.advice.mx_null"
	MsgAdviceMXTemporary    MessageKey = "dnscheck.advice.mx_temporary"
	MsgAdviceDKIMOK         MessageKey = "dnscheck.advice.dkim_ok"
	MsgAdviceDKIMPublish    MessageKey = "dnscheck.advice.dkim_publish"
	MsgAdviceDKIMMissing    MessageKey = "dnscheck.advice.dkim_missing"
	MsgAdviceDKIMMismatch   MessageKey = "dnscheck.advice.dkim_mismatch"
	MsgAdviceDKIMInvalid    MessageKey = "dnscheck.advice.dkim_invalid"
	MsgAdviceDKIMRevoked    MessageKey = "dnscheck.advice.dkim_revoked"
	MsgAdviceDKIMTemporary  MessageKey = "dnscheck.advice.dkim_temporary"
	MsgAdviceDKIMNoSelector MessageKey = "dnscheck.advice.dkim_no_selector"
	MsgAdviceDMARCMissing   MessageKey = "dnscheck.advice.dmarc_missing"
	MsgAdviceDMARCInvalid   MessageKey = "dnscheck.advice.dmarc_invalid"
	MsgAdviceDMARCMonitor   MessageKey = "dnscheck.advice.dmarc_monitor"
	MsgAdviceDMARCPass      MessageKey = "dnscheck.advice.dmarc_pass"
	MsgAdviceDMARCFail      MessageKey = "dnscheck.advice.dmarc_fail"
	MsgAdviceDMARCTemporary MessageKey = "dnscheck.advice.dmarc_temporary"
	MsgNoteSPFNotAligned    MessageKey = "dnscheck.note.spf_not_aligned"
	MsgNoteSPFAligned       MessageKey = "dnscheck.note.spf_aligned"
)

// CatalogEntry is one translatable text. Placeholders are written {name}
// and filled from Message.Params; {domain} is always available.
type CatalogEntry struct {
	Key MessageKey
	DE  string
	EN  string
}

// Catalog returns every text of this package in German and English, for the
// UI's translation tables. It returns a new slice on each call.
func Catalog() []CatalogEntry {
	return []CatalogEntry{
		// The three seed texts, verbatim; "$$$" of the manual is {domain}.
		{MsgSPFNeedsInclude,
			"Für die Domain {domain} ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen E-Mailversand angepasst werden muss.",
			"The domain {domain} has an SPF record that must be adapted for smooth e-mail delivery."},
		{MsgNoMX,
			"Die Domain {domain} ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt.",
			"The domain {domain} is misconfigured. It has no MX records."},
		{MsgUnreachable,
			"Die Domain {domain} ist nicht erreichbar.",
			"The domain {domain} cannot be reached."},
		{MsgOK,
			"Die Domain {domain} ist für den E-Mail-Versand korrekt eingerichtet.",
			"The domain {domain} is set up correctly for sending e-mail."},
		{MsgSPFMissing,
			"Für die Domain {domain} ist kein SPF-Eintrag hinterlegt.",
			"The domain {domain} has no SPF record."},
		{MsgTemporaryFailure,
			"Die Domain {domain} konnte gerade nicht geprüft werden, weil die DNS-Abfrage fehlgeschlagen ist. Bitte versuchen Sie es später erneut.",
			"The domain {domain} could not be checked right now because the DNS lookup failed. Please try again later."},
		{MsgInvalidDomain,
			"„{domain}“ ist kein gültiger Domainname.",
			"“{domain}” is not a valid domain name."},

		{MsgAdviceSPFOK,
			"Der SPF-Eintrag von {domain} erlaubt den Versand über unsere Server.",
			"The SPF record of {domain} allows sending through our servers."},
		{MsgAdviceSPFCreate,
			"Legen Sie für {domain} diesen TXT-Eintrag an: {record}",
			"Add this TXT record to {domain}: {record}"},
		{MsgAdviceSPFReplace,
			"Ersetzen Sie den SPF-Eintrag von {domain} durch: {record}",
			"Replace the SPF record of {domain} with: {record}"},
		{MsgAdviceSPFMultiple,
			"Für {domain} sind mehrere SPF-Einträge hinterlegt; das ist ungültig. Behalten Sie nur einen: {record}",
			"{domain} publishes more than one SPF record, which is invalid. Keep only one: {record}"},
		{MsgAdviceSPFEvaluation,
			"Die SPF-Prüfung unserer Server für {domain} ergibt „{result}“. Prüfen Sie den Eintrag (höchstens 10 DNS-Abfragen, include vor „all“).",
			"The SPF check of our servers for {domain} yields “{result}”. Review the record (at most 10 DNS lookups, include before “all”)."},
		{MsgAdviceSPFTemporary,
			"Der SPF-Eintrag von {domain} konnte gerade nicht abgefragt werden.",
			"The SPF record of {domain} could not be queried right now."},

		{MsgAdviceMXOK,
			"{domain} empfängt E-Mails über {hosts}.",
			"{domain} receives e-mail through {hosts}."},
		{MsgAdviceMXMissing,
			"Legen Sie für {domain} mindestens einen MX-Eintrag an, damit Antworten Ihren Mailserver erreichen.",
			"Add at least one MX record to {domain} so that replies reach your mail server."},
		{MsgAdviceMXNull,
			"{domain} nimmt laut Null-MX-Eintrag keine E-Mails an; Antworten können nicht zugestellt werden.",
			"{domain} declares by a null MX record that it accepts no e-mail; replies cannot be delivered."},
		{MsgAdviceMXTemporary,
			"Die MX-Einträge von {domain} konnten gerade nicht abgefragt werden.",
			"The MX records of {domain} could not be queried right now."},

		{MsgAdviceDKIMOK,
			"Der DKIM-Schlüssel für {domain} ist unter {name} veröffentlicht.",
			"The DKIM key for {domain} is published at {name}."},
		{MsgAdviceDKIMPublish,
			"Veröffentlichen Sie unter {name} diesen TXT-Eintrag: {record}",
			"Publish this TXT record at {name}: {record}"},
		{MsgAdviceDKIMMissing,
			"Unter {name} ist kein DKIM-Schlüssel veröffentlicht.",
			"No DKIM key is published at {name}."},
		{MsgAdviceDKIMMismatch,
			"Der unter {name} veröffentlichte DKIM-Schlüssel passt nicht zu unserem; ersetzen Sie ihn durch: {record}",
			"The DKIM key published at {name} does not match ours; replace it with: {record}"},
		{MsgAdviceDKIMInvalid,
			"Der DKIM-Eintrag unter {name} ist ungültig.",
			"The DKIM record at {name} is invalid."},
		{MsgAdviceDKIMRevoked,
			"Der DKIM-Schlüssel unter {name} ist widerrufen (leeres p=).",
			"The DKIM key at {name} is revoked (empty p=)."},
		{MsgAdviceDKIMTemporary,
			"Der DKIM-Eintrag unter {name} konnte gerade nicht abgefragt werden.",
			"The DKIM record at {name} could not be queried right now."},
		{MsgAdviceDKIMNoSelector,
			"Für {domain} ist kein DKIM-Selektor eingerichtet; die E-Mails werden nicht mit der Domain signiert.",
			"No DKIM selector is set up for {domain}; mail is not signed with the domain."},

		{MsgAdviceDMARCMissing,
			"Für {domain} ist keine DMARC-Richtlinie hinterlegt; empfohlen ist unter {name} der TXT-Eintrag: {record}",
			"{domain} has no DMARC policy; we recommend the TXT record at {name}: {record}"},
		{MsgAdviceDMARCInvalid,
			"Der DMARC-Eintrag unter {name} ist ungültig und wird von Empfängern ignoriert.",
			"The DMARC record at {name} is invalid and ignored by receivers."},
		{MsgAdviceDMARCMonitor,
			"Die DMARC-Richtlinie von {domain} ist „none“: Empfänger beobachten nur und weisen nichts ab.",
			"The DMARC policy of {domain} is “none”: receivers only monitor and reject nothing."},
		{MsgAdviceDMARCPass,
			"Die DMARC-Richtlinie „{policy}“ von {domain} wird von unseren E-Mails über DKIM erfüllt.",
			"Our mail meets the DMARC policy “{policy}” of {domain} through DKIM."},
		{MsgAdviceDMARCFail,
			"Die DMARC-Richtlinie von {domain} ist „{policy}“, aber unsere E-Mails bestehen DMARC nicht, solange der DKIM-Schlüssel fehlt oder nicht passt: Sie werden abgewiesen oder als Spam markiert.",
			"The DMARC policy of {domain} is “{policy}”, but our mail fails DMARC while the DKIM key is missing or wrong: it will be rejected or marked as spam."},
		{MsgAdviceDMARCTemporary,
			"Der DMARC-Eintrag von {domain} konnte gerade nicht abgefragt werden.",
			"The DMARC record of {domain} could not be queried right now."},
		{MsgNoteSPFNotAligned,
			"SPF zählt für DMARC nicht, weil unsere Absenderadresse im Umschlag ({return_path}) nicht unter {domain} liegt; DMARC besteht nur über DKIM.",
			"SPF does not count for DMARC because our envelope sender domain ({return_path}) is not under {domain}; DMARC passes only through DKIM."},
		{MsgNoteSPFAligned,
			"SPF ist für DMARC ausgerichtet, weil unsere Absenderadresse im Umschlag ({return_path}) unter {domain} liegt.",
			"SPF is aligned for DMARC because our envelope sender domain ({return_path}) is under {domain}."},
	}
}

// catalogText looks a key up in the catalog; English unless lang is German.
func catalogText(key MessageKey, lang string) (string, bool) {
	german := strings.HasPrefix(strings.ToLower(lang), "de")
	for _, entry := range Catalog() {
		if entry.Key == key {
			if german {
				return entry.DE, true
			}
			return entry.EN, true
		}
	}
	return "", false
}

// Message is one user-facing statement: a key and the values for its
// placeholders. It is plain data so reports can be stored and rendered later
// in the reader's language.
type Message struct {
	Key    MessageKey        `json:"key"`
	Params map[string]string `json:"params,omitempty"`
}

func newMessage(key MessageKey, domain string, kv ...string) Message {
	params := map[string]string{"domain": domain}
	for i := 0; i+1 < len(kv); i += 2 {
		params[kv[i]] = kv[i+1]
	}
	return Message{Key: key, Params: params}
}

// Text renders the message in lang ("de", "de-DE", "en", ...). Languages
// other than German get English. An unknown key renders as the key itself.
func (m Message) Text(lang string) string {
	template, ok := catalogText(m.Key, lang)
	if !ok {
		return string(m.Key)
	}
	if len(m.Params) == 0 {
		return template
	}
	pairs := make([]string, 0, 2*len(m.Params))
	for name, value := range m.Params {
		pairs = append(pairs, "{"+name+"}", value)
	}
	return strings.NewReplacer(pairs...).Replace(template)
}
