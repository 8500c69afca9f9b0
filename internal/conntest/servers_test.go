package conntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"postfach/internal/netguard"
)

// testCA issues certificates for in-process servers, including broken ones
// (expired, wrong name) that a shared helper has no reason to offer.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf issues a server certificate valid from notBefore to notAfter for
// hosts (IP addresses or DNS names).
func (ca *testCA) leaf(t *testing.T, notBefore, notAfter time.Time, hosts ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) serverTLS(t *testing.T, hosts ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), hosts...)}}
}

func (ca *testCA) expiredTLS(t *testing.T, hosts ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), hosts...)}}
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// loopbackTester allows 127.0.0.0/8, as an operator would allow an
// on-premises range, and trusts only ca.
func loopbackTester(ca *testCA, resolver *net.Resolver) *Tester {
	return &Tester{
		Dialer: &netguard.Dialer{
			Resolver: resolver,
			Policy:   netguard.Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		},
		RootCAs: ca.pool(),
		Timeout: 20 * time.Second,
	}
}

func newMockDNS(t *testing.T, zones map[string]mockdns.Zone) *net.Resolver {
	t.Helper()
	srv, err := mockdns.NewServerWithLogger(zones, log.New(io.Discard, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.NewResolver()
}

// startIMAP serves an in-memory mailbox store with user alice/secret and an
// INBOX. tlsConfig enables STARTTLS; implicit wraps the listener in TLS.
func startIMAP(t *testing.T, tlsConfig *tls.Config, implicit bool) int {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", "secret")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	}
	if !implicit {
		opts.TLSConfig = tlsConfig
	}
	srv := imapserver.New(opts)
	ln := listenLoopback(t)
	var serveLn net.Listener = ln
	if implicit {
		serveLn = tls.NewListener(ln, tlsConfig)
	}
	go srv.Serve(serveLn)
	t.Cleanup(func() { srv.Close() })
	return port(ln)
}

// smtpBackend accepts alice/secret with PLAIN.
type smtpBackend struct{}

func (smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{}, nil }

type smtpSession struct{}

func (*smtpSession) AuthMechanisms() []string { return []string{sasl.Plain, "XOAUTH2"} }
func (*smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech == "XOAUTH2" {
		return &xoauth2Server{}, nil
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user == "alice" && pass == "secret" {
			return nil
		}
		return smtp.ErrAuthFailed
	}), nil
}
func (*smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*smtpSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (*smtpSession) Reset()                               {}
func (*smtpSession) Logout() error                        { return nil }

// startSMTP serves go-smtp. tlsConfig enables STARTTLS (or implicit TLS);
// insecureAuth offers AUTH before TLS.
func startSMTP(t *testing.T, tlsConfig *tls.Config, implicit, insecureAuth bool) int {
	t.Helper()
	srv := smtp.NewServer(smtpBackend{})
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = insecureAuth
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln := listenLoopback(t)
	var serveLn net.Listener = ln
	if implicit {
		serveLn = tls.NewListener(ln, tlsConfig)
	} else {
		srv.TLSConfig = tlsConfig
	}
	go srv.Serve(serveLn)
	t.Cleanup(func() { srv.Close() })
	return port(ln)
}

// startScripted accepts connections and writes greeting to each, then
// reads until the client hangs up. An empty greeting means silence.
func startScripted(t *testing.T, greeting string) int {
	t.Helper()
	ln := listenLoopback(t)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if greeting != "" {
					io.WriteString(conn, greeting)
				}
				io.Copy(io.Discard, conn)
			}()
		}
	}()
	return port(ln)
}

func itoa(n int) string { return strconv.Itoa(n) }

// xoauth2Server accepts alice with token "good-token" and otherwise answers
// like Gmail: a JSON challenge, then 535 after the client's empty reply.
type xoauth2Server struct{ failed bool }

func (s *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if s.failed {
		return nil, true, smtp.ErrAuthFailed
	}
	if string(response) == "user=alice\x01auth=Bearer good-token\x01\x01" {
		return nil, true, nil
	}
	s.failed = true
	return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
}
