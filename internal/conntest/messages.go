package conntest

// Message keys. The UI shows Text(key, lang); the key itself is stable and
// goes into audit records and the API.
const (
	KeyOK            = "conntest.ok"
	KeyRateLimited   = "conntest.rate_limited"
	KeyInvalid       = "conntest.settings.invalid"
	KeyTimeout       = "conntest.timeout"
	KeyClosed        = "conntest.closed"
	KeyProtocol      = "conntest.protocol_error"
	KeyWarnPlaintext = "conntest.warn.plaintext"

	KeyDNSInvalidHost = "conntest.dns.invalid_host"
	KeyDNSNumericHost = "conntest.dns.numeric_host"
	KeyDNSNotFound    = "conntest.dns.not_found"
	KeyDNSTemporary   = "conntest.dns.temporary"
	KeyDNSFailed      = "conntest.dns.failed"

	KeyTCPForbidden   = "conntest.tcp.forbidden"
	KeyTCPRefused     = "conntest.tcp.refused"
	KeyTCPTimeout     = "conntest.tcp.timeout"
	KeyTCPUnreachable = "conntest.tcp.unreachable"
	KeyTCPFailed      = "conntest.tcp.failed"

	KeyTLSUnknownAuthority = "conntest.tls.unknown_authority"
	KeyTLSExpired          = "conntest.tls.expired"
	KeyTLSNotYetValid      = "conntest.tls.not_yet_valid"
	KeyTLSNameMismatch     = "conntest.tls.name_mismatch"
	KeyTLSInvalidCert      = "conntest.tls.invalid_certificate"
	KeyTLSNotTLS           = "conntest.tls.not_tls"
	KeyTLSOldVersion       = "conntest.tls.old_version"
	KeyTLSFailed           = "conntest.tls.failed"

	KeyGreetingRejected      = "conntest.greeting.rejected"
	KeyGreetingWrongProtocol = "conntest.greeting.wrong_protocol"
	KeyGreetingUnexpected    = "conntest.greeting.unexpected"
	KeyGreetingEHLORejected  = "conntest.greeting.ehlo_rejected"

	KeySTARTTLSUnsupported = "conntest.starttls.unsupported"
	KeySTARTTLSRefused     = "conntest.starttls.refused"
	KeySTARTTLSFailed      = "conntest.starttls.failed"

	KeyAuthFailed             = "conntest.auth.failed"
	KeyAuthOAuthFailed        = "conntest.auth.oauth_failed"
	KeyAuthReauthorize        = "conntest.auth.oauth_reauthorize"
	KeyAuthTokenUnavailable   = "conntest.auth.oauth_token_unavailable"
	KeyAuthTemporary          = "conntest.auth.temporary"
	KeyAuthUnsupported        = "conntest.auth.unsupported"
	KeyAuthNoMechanism        = "conntest.auth.no_mechanism"
	KeyAuthEncryptionRequired = "conntest.auth.encryption_required"
	KeyAuthMissing            = "conntest.auth.missing_credentials"

	KeyFolderNotFound     = "conntest.folder.not_found"
	KeyFolderNoPermission = "conntest.folder.no_permission"
	KeyFolderInUse        = "conntest.folder.in_use"
	KeyFolderFailed       = "conntest.folder.failed"
)

// text is one message in the two UI languages.
type text struct{ de, en string }

// messages returns the message table. It is built on each call (it is
// small) so that no caller can change it for everyone.
func messages() map[string]text {
	return map[string]text{
		KeyOK:            {"Verbindungstest erfolgreich: Alle Schritte wurden fehlerfrei durchlaufen.", "Connection test succeeded: every step passed."},
		KeyRateLimited:   {"Zu viele Verbindungstests in kurzer Zeit. Bitte warten Sie einen Moment und versuchen Sie es dann erneut.", "Too many connection tests in a short time. Please wait a moment and try again."},
		KeyInvalid:       {"Die Verbindungseinstellungen sind unvollständig oder ungültig. Bitte prüfen Sie Protokoll, Server, Port und Verschlüsselung.", "The connection settings are incomplete or invalid. Please check protocol, server, port and encryption."},
		KeyTimeout:       {"Zeitüberschreitung: Der Server hat nicht rechtzeitig geantwortet.", "Timeout: the server did not answer in time."},
		KeyClosed:        {"Der Server hat die Verbindung unerwartet beendet.", "The server closed the connection unexpectedly."},
		KeyProtocol:      {"Der Server hat unerwartet geantwortet. Bitte prüfen Sie, ob Protokoll und Port zusammenpassen.", "The server gave an unexpected answer. Please check that protocol and port belong together."},
		KeyWarnPlaintext: {"Hinweis: Das Passwort wurde unverschlüsselt übertragen. Wir empfehlen SSL/TLS oder STARTTLS.", "Note: the password was sent unencrypted. We recommend SSL/TLS or STARTTLS."},

		KeyDNSInvalidHost: {"DNS-Auflösung fehlgeschlagen: Der Servername ist ungültig. Bitte geben Sie einen Namen wie mail.example.com oder eine IP-Adresse an.", "DNS lookup failed: the server name is invalid. Please enter a name such as mail.example.com or an IP address."},
		KeyDNSNumericHost: {"Der Servername ist eine ungewöhnliche Schreibweise einer IP-Adresse. Bitte geben Sie die Adresse in der üblichen Form an, z. B. 192.0.2.10.", "The server name is an unusual spelling of an IP address. Please write the address in the usual form, e.g. 192.0.2.10."},
		KeyDNSNotFound:    {"DNS-Auflösung fehlgeschlagen: Der Servername existiert nicht. Bitte prüfen Sie die Schreibweise.", "DNS lookup failed: the server name does not exist. Please check the spelling."},
		KeyDNSTemporary:   {"DNS-Auflösung vorübergehend fehlgeschlagen. Bitte versuchen Sie es später erneut.", "DNS lookup failed temporarily. Please try again later."},
		KeyDNSFailed:      {"DNS-Auflösung fehlgeschlagen.", "DNS lookup failed."},

		KeyTCPForbidden:   {"Verbindung nicht erlaubt: Der Server liegt in einem internen oder reservierten Netz. Aus Sicherheitsgründen sind solche Ziele gesperrt; Ihr Betreiber kann interne Netze freigeben.", "Connection not allowed: the server is in an internal or reserved network. Such targets are blocked for security reasons; your operator can allow internal networks."},
		KeyTCPRefused:     {"TCP-Verbindung abgelehnt: Der Server nimmt auf diesem Port keine Verbindungen an. Bitte prüfen Sie Server und Port.", "TCP connection refused: the server does not accept connections on this port. Please check server and port."},
		KeyTCPTimeout:     {"TCP-Verbindung: Zeitüberschreitung. Der Server antwortet nicht; möglicherweise blockiert eine Firewall den Port.", "TCP connection timed out. The server does not answer; a firewall may be blocking the port."},
		KeyTCPUnreachable: {"TCP-Verbindung fehlgeschlagen: Der Server ist über das Netzwerk nicht erreichbar.", "TCP connection failed: the server cannot be reached over the network."},
		KeyTCPFailed:      {"TCP-Verbindung fehlgeschlagen.", "TCP connection failed."},

		KeyTLSUnknownAuthority: {"TLS-Handshake fehlgeschlagen: Das Zertifikat stammt von einer unbekannten Zertifizierungsstelle.", "TLS handshake failed: the certificate was issued by an unknown certificate authority."},
		KeyTLSExpired:          {"TLS-Handshake fehlgeschlagen: Das Zertifikat ist abgelaufen.", "TLS handshake failed: the certificate has expired."},
		KeyTLSNotYetValid:      {"TLS-Handshake fehlgeschlagen: Das Zertifikat ist noch nicht gültig. Bitte prüfen Sie auch die Uhrzeit des Servers.", "TLS handshake failed: the certificate is not valid yet. Please also check the server's clock."},
		KeyTLSNameMismatch:     {"TLS-Handshake fehlgeschlagen: Das Zertifikat ist nicht für diesen Servernamen ausgestellt.", "TLS handshake failed: the certificate was not issued for this server name."},
		KeyTLSInvalidCert:      {"TLS-Handshake fehlgeschlagen: Das Zertifikat ist ungültig.", "TLS handshake failed: the certificate is invalid."},
		KeyTLSNotTLS:           {"TLS-Handshake fehlgeschlagen: Der Server spricht auf diesem Port kein TLS. Wählen Sie STARTTLS oder den Port für SSL/TLS.", "TLS handshake failed: the server does not speak TLS on this port. Choose STARTTLS or the port for SSL/TLS."},
		KeyTLSOldVersion:       {"TLS-Handshake fehlgeschlagen: Der Server unterstützt nur veraltete TLS-Versionen.", "TLS handshake failed: the server supports only outdated TLS versions."},
		KeyTLSFailed:           {"TLS-Handshake fehlgeschlagen.", "TLS handshake failed."},

		KeyGreetingRejected:      {"Der Server hat die Verbindung bei der Begrüßung abgewiesen.", "The server refused the connection in its greeting."},
		KeyGreetingWrongProtocol: {"Auf diesem Port antwortet ein Server mit einem anderen Protokoll. Bitte prüfen Sie Port und Kontotyp.", "A server speaking a different protocol answers on this port. Please check port and account type."},
		KeyGreetingUnexpected:    {"Die Begrüßung des Servers passt nicht zum gewählten Protokoll.", "The server's greeting does not match the chosen protocol."},
		KeyGreetingEHLORejected:  {"Der SMTP-Server hat die Begrüßung mit EHLO abgelehnt.", "The SMTP server rejected the EHLO greeting."},

		KeySTARTTLSUnsupported: {"Der Server bietet kein STARTTLS an. Wählen Sie SSL/TLS oder prüfen Sie den Port.", "The server does not offer STARTTLS. Choose SSL/TLS or check the port."},
		KeySTARTTLSRefused:     {"Der Server hat STARTTLS abgelehnt.", "The server refused STARTTLS."},
		KeySTARTTLSFailed:      {"Die Verschlüsselung mit STARTTLS ist fehlgeschlagen.", "Encryption with STARTTLS failed."},

		KeyAuthFailed:             {"Anmeldung fehlgeschlagen: Benutzername oder Passwort ist falsch.", "Login failed: wrong user name or password."},
		KeyAuthOAuthFailed:        {"Anmeldung fehlgeschlagen: Das OAuth2-Token wurde nicht akzeptiert. Bitte verbinden Sie das Konto erneut.", "Login failed: the OAuth2 token was not accepted. Please connect the account again."},
		KeyAuthReauthorize:        {"Anmeldung nicht möglich: Die OAuth2-Anmeldung des Kontos fehlt, ist abgelaufen oder wurde widerrufen. Bitte klicken Sie unter Mail-Accounts › Abruf auf „Erneut autorisieren“.", "Login not possible: the account's OAuth2 sign-in is missing, has expired or was revoked. Please click “Re-authorise” under Mail accounts › Fetching."},
		KeyAuthTokenUnavailable:   {"Anmeldung nicht möglich: Das OAuth2-Zugriffstoken konnte nicht abgerufen werden (der Anbieter antwortet nicht, oder OAuth2 ist vom Betreiber nicht eingerichtet). Bitte versuchen Sie es später erneut.", "Login not possible: the OAuth2 access token could not be obtained (the provider does not answer, or the operator has not set up OAuth2). Please try again later."},
		KeyAuthTemporary:          {"Anmeldung ist vorübergehend nicht möglich. Bitte versuchen Sie es später erneut.", "Login is temporarily unavailable. Please try again later."},
		KeyAuthUnsupported:        {"Der Server bietet keine Anmeldung an. Bei unverschlüsselten Verbindungen ist sie oft erst nach STARTTLS möglich.", "The server offers no login. On unencrypted connections login is often only possible after STARTTLS."},
		KeyAuthNoMechanism:        {"Der Server unterstützt kein passendes Anmeldeverfahren.", "The server supports no suitable login method."},
		KeyAuthEncryptionRequired: {"Der Server erlaubt die Anmeldung nur über eine verschlüsselte Verbindung. Bitte wählen Sie SSL/TLS oder STARTTLS.", "The server allows login only over an encrypted connection. Please choose SSL/TLS or STARTTLS."},
		KeyAuthMissing:            {"Bitte geben Sie Benutzername und Passwort (oder eine OAuth2-Anmeldung) an.", "Please enter user name and password (or an OAuth2 login)."},

		KeyFolderNotFound:     {"Ordnerzugriff fehlgeschlagen: Der Ordner existiert auf dem Server nicht.", "Folder access failed: the folder does not exist on the server."},
		KeyFolderNoPermission: {"Ordnerzugriff fehlgeschlagen: Keine Berechtigung für diesen Ordner.", "Folder access failed: no permission for this folder."},
		KeyFolderInUse:        {"Das Postfach ist gerade durch eine andere Verbindung gesperrt. Bitte versuchen Sie es später erneut.", "The mailbox is locked by another connection. Please try again later."},
		KeyFolderFailed:       {"Ordnerzugriff fehlgeschlagen: Das Postfach konnte nicht geöffnet werden.", "Folder access failed: the mailbox could not be opened."},
	}
}

// stepNames are the UI labels of the steps.
func stepNames() map[Step]text {
	return map[Step]text{
		StepDNS:      {"DNS-Auflösung", "DNS lookup"},
		StepTCP:      {"TCP-Verbindung", "TCP connection"},
		StepTLS:      {"TLS-Handshake", "TLS handshake"},
		StepGreeting: {"Begrüßung des Servers", "Server greeting"},
		StepSTARTTLS: {"STARTTLS", "STARTTLS"},
		StepAuth:     {"Anmeldung", "Login"},
		StepFolder:   {"Ordnerzugriff", "Folder access"},
	}
}

// Text returns the message for key in lang ("de" or "en"; anything else
// gets English). An unknown key is returned as is, so a missing text shows
// up in the UI instead of an empty line.
func Text(key, lang string) string {
	t, ok := messages()[key]
	if !ok {
		return key
	}
	if lang == "de" {
		return t.de
	}
	return t.en
}

// StepName returns the UI label of a step in lang ("de" or "en").
func StepName(s Step, lang string) string {
	t, ok := stepNames()[s]
	if !ok {
		return string(s)
	}
	if lang == "de" {
		return t.de
	}
	return t.en
}
