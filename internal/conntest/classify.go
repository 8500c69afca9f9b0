package conntest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"postfach/internal/netguard"
)

// outcome is a failed step's message key and safe detail.
type outcome struct {
	key    string
	detail string
}

func classifyDNS(err error) outcome {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, netguard.ErrNumericHost):
		return outcome{key: KeyDNSNumericHost}
	case errors.Is(err, netguard.ErrInvalidHost):
		return outcome{key: KeyDNSInvalidHost}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return outcome{key: KeyDNSNotFound}
	case errors.As(err, &dnsErr) && (dnsErr.IsTemporary || dnsErr.IsTimeout):
		return outcome{key: KeyDNSTemporary}
	case errors.Is(err, context.DeadlineExceeded):
		return outcome{key: KeyDNSTemporary, detail: "lookup timed out"}
	}
	return outcome{key: KeyDNSFailed}
}

func classifyTCP(err error) outcome {
	var forbidden *netguard.ForbiddenAddressError
	switch {
	case errors.As(err, &forbidden):
		detail := fmt.Sprintf("%s is %s", forbidden.Addr, forbidden.Reason)
		if forbidden.Embedded.IsValid() && forbidden.Embedded != forbidden.Addr.Unmap() {
			detail = fmt.Sprintf("%s embeds %s, which is %s", forbidden.Addr, forbidden.Embedded, forbidden.Reason)
		}
		return outcome{key: KeyTCPForbidden, detail: detail}
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcome{key: KeyTCPRefused}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return outcome{key: KeyTCPUnreachable}
	case isTimeout(err):
		return outcome{key: KeyTCPTimeout}
	}
	return outcome{key: KeyTCPFailed}
}

// classifyTLS recognises handshake failures, with the certificate problem
// when there is one. ok is false for errors that are not about TLS.
func classifyTLS(err error, now time.Time) (outcome, bool) {
	var (
		unknownAuthority x509.UnknownAuthorityError
		invalid          x509.CertificateInvalidError
		hostname         x509.HostnameError
		rootsErr         x509.SystemRootsError
		recordHeader     tls.RecordHeaderError
		alert            tls.AlertError
		verify           *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownAuthority), errors.As(err, &rootsErr):
		return outcome{key: KeyTLSUnknownAuthority, detail: "certificate problem: unknown authority" + issuerDetail(unknownAuthority.Cert)}, true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		if invalid.Cert != nil && now.Before(invalid.Cert.NotBefore) {
			return outcome{key: KeyTLSNotYetValid, detail: "certificate problem: not valid before " + invalid.Cert.NotBefore.UTC().Format(time.RFC3339)}, true
		}
		detail := "certificate problem: expired"
		if invalid.Cert != nil {
			detail += " at " + invalid.Cert.NotAfter.UTC().Format(time.RFC3339)
		}
		return outcome{key: KeyTLSExpired, detail: detail}, true
	case errors.As(err, &invalid):
		return outcome{key: KeyTLSInvalidCert, detail: "certificate problem: invalid"}, true
	case errors.As(err, &hostname):
		return outcome{key: KeyTLSNameMismatch, detail: "certificate problem: name mismatch" + namesDetail(hostname.Certificate)}, true
	case errors.As(err, &verify):
		return outcome{key: KeyTLSInvalidCert, detail: "certificate problem: invalid"}, true
	case errors.As(err, &recordHeader):
		// The first bytes were not a TLS record: a plaintext server (a
		// greeting, usually) answered.
		return outcome{key: KeyTLSNotTLS}, true
	case errors.As(err, &alert):
		if tls.AlertError(70) == alert { // protocol_version, RFC 8446 section 6.2
			return outcome{key: KeyTLSOldVersion}, true
		}
		return outcome{key: KeyTLSFailed, detail: "TLS alert: " + alert.Error()}, true
	case err != nil && strings.Contains(err.Error(), "tls: server selected unsupported protocol version"):
		return outcome{key: KeyTLSOldVersion}, true
	case err != nil && strings.HasPrefix(err.Error(), "tls: "):
		return outcome{key: KeyTLSFailed}, true
	}
	return outcome{}, false
}

// classifyIO covers what can go wrong on an established connection outside
// protocol answers: our deadline, the peer hanging up.
func classifyIO(ctx context.Context, err error) outcome {
	switch {
	case ctx.Err() != nil || isTimeout(err):
		return outcome{key: KeyTimeout}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return outcome{key: KeyClosed}
	case errors.Is(err, errLineTooLong):
		return outcome{key: KeyProtocol, detail: "reply line too long"}
	}
	return outcome{key: KeyProtocol}
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// namesDetail lists the names a certificate is valid for. They come from
// the certificate, not from free text the server chose to show us, and are
// cut to printable ASCII and a few entries.
func namesDetail(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = append(names, cert.Subject.CommonName)
	}
	if len(names) == 0 {
		return ""
	}
	const maxNames = 5
	more := ""
	if len(names) > maxNames {
		more = fmt.Sprintf(" (+%d more)", len(names)-maxNames)
		names = names[:maxNames]
	}
	for i, n := range names {
		names[i] = printable(n, 80)
	}
	return "; certificate is for " + strings.Join(names, ", ") + more
}

func issuerDetail(cert *x509.Certificate) string {
	if cert == nil || cert.Issuer.CommonName == "" {
		return ""
	}
	return "; issuer " + printable(cert.Issuer.CommonName, 80)
}

// printable keeps printable ASCII and cuts to max bytes.
func printable(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
