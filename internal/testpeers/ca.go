package testpeers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is an in-memory certificate authority for one test. Servers get leaf
// certificates signed by it and clients trust only its Pool, so tests verify
// certificates for real instead of switching verification off.
type CA struct {
	t    testing.TB
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// defaultHosts are the names a leaf certificate covers when the caller names
// none: every way a test reaches a loopback listener.
func defaultHosts() []string { return []string{"127.0.0.1", "::1", "localhost"} }

// NewCA creates a fresh ECDSA P-256 certificate authority.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpeers: CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "Postfach test CA", Organization: []string{"Postfach tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testpeers: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpeers: parse CA certificate: %v", err)
	}
	return &CA{
		t:    t,
		cert: cert,
		key:  key,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testpeers: serial number: %v", err)
	}
	return serial
}

// CertPEM returns the CA certificate in PEM form.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool returns a pool that trusts only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Leaf issues a server certificate for hosts (IP addresses or DNS names;
// 127.0.0.1, ::1 and localhost when none are given).
func (ca *CA) Leaf(hosts ...string) tls.Certificate {
	ca.t.Helper()
	certPEM, keyPEM := ca.leafPEM(hosts)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		ca.t.Fatalf("testpeers: leaf key pair: %v", err)
	}
	return cert
}

func (ca *CA) leafPEM(hosts []string) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	if len(hosts) == 0 {
		hosts = defaultHosts()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatalf("testpeers: leaf key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(ca.t),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, host := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatalf("testpeers: leaf certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatalf("testpeers: marshal leaf key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// ServerTLS returns a server configuration with a leaf certificate for hosts
// (127.0.0.1, ::1 and localhost when none are given).
func (ca *CA) ServerTLS(hosts ...string) *tls.Config {
	ca.t.Helper()
	return &tls.Config{
		Certificates: []tls.Certificate{ca.Leaf(hosts...)},
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientTLS returns a client configuration that trusts only this CA and
// verifies serverName (a DNS name or an IP address such as "127.0.0.1").
func (ca *CA) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		RootCAs:    ca.Pool(),
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
	}
}

// WriteFiles writes the CA certificate and a leaf certificate and key for
// hosts into dir as PEM files, for external peers such as Dovecot, curl or
// swaks. The leaf certificate file holds the leaf only; clients need caPath.
func (ca *CA) WriteFiles(dir string, hosts ...string) (caPath, certPath, keyPath string) {
	ca.t.Helper()
	certPEM, keyPEM := ca.leafPEM(hosts)
	caPath = filepath.Join(dir, "ca.pem")
	certPath = filepath.Join(dir, "cert.pem")
	keyPath = filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{caPath, ca.pem, 0o644},
		{certPath, certPEM, 0o644},
		{keyPath, keyPEM, 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			ca.t.Fatalf("testpeers: %v", fmt.Errorf("write %s: %w", f.path, err))
		}
	}
	return caPath, certPath, keyPath
}
