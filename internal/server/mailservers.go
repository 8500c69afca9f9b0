package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"postfach/internal/core"
	"postfach/internal/imapd"
	"postfach/internal/mailhub"
	"postfach/internal/pop3"
	"postfach/internal/pop3d"
	"postfach/internal/submission"
)

// MailAddrs are the bound addresses of the hosted-mailbox listeners (empty when off).
type MailAddrs struct {
	IMAP, IMAPTLS, POP3, POP3TLS, Submission, SubmissionTLS string
}

// submissionQueue hands submitted mail to the outbound queue.
type submissionQueue struct{ core *core.Service }

func (q submissionQueue) EnqueueSubmission(ctx context.Context, p core.HostedPrincipal, from string, rcpts []string, raw []byte) error {
	_, err := q.core.EnqueueHosted(ctx, p, from, rcpts, raw)
	return err
}

// mailTLS loads the operator's certificate, or with --demo a self-signed one generated on
// the first start into the data directory. Without either, it returns nil.
func (s *Server) mailTLS() (*tls.Config, error) {
	certFile, keyFile := s.Config.TLSCertFile, s.Config.TLSKeyFile
	if certFile == "" && s.Config.Demo {
		certFile, keyFile = filepath.Join(s.Config.DataDir, "mail-cert.pem"), filepath.Join(s.Config.DataDir, "mail-key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSelfSigned(certFile, keyFile, s.Config.Hostname); err != nil {
				return nil, err
			}
		}
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("mail listeners: load certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func writeSelfSigned(certFile, keyFile, hostname string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("demo certificate: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: hostname},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{hostname, "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("demo certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("demo certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("demo certificate: %w", err)
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func enabled(addr string) bool { return addr != "" && addr != "off" }

// MailOptions tune the hosted-mailbox listeners beyond the configuration.
type MailOptions struct {
	// IMAPPollInterval bounds how long a change without a signal stays unseen by an IMAP
	// session (imapd.Config.PollInterval); zero keeps the default.
	IMAPPollInterval time.Duration
}

// ListenMail starts the hosted-mailbox listeners: IMAP (STARTTLS and implicit TLS), POP3
// (STLS and implicit TLS) and SMTP submission (587-style STARTTLS and 465-style implicit
// TLS). Without a certificate (and without --demo) they stay off, because logins need TLS.
func (s *Server) ListenMail() error { return s.ListenMailWith(MailOptions{}) }

// ListenMailWith is ListenMail with options.
func (s *Server) ListenMailWith(opts MailOptions) error {
	tlsConfig, err := s.mailTLS()
	if err != nil {
		return err
	}
	hub := mailhub.New(s.DB, s.Log)
	if err := hub.Start(context.Background()); err != nil {
		return err
	}
	s.mu.Lock()
	s.closers = append(s.closers, func(context.Context) error { hub.Close(); return nil })
	s.mu.Unlock()
	cfg := s.Config
	s.Core.Hosting.Endpoints = core.MailEndpoints{Hostname: cfg.Hostname,
		IMAPPort: portOf(cfg.IMAPAddr), IMAPTLSPort: portOf(cfg.IMAPTLSAddr), POP3Port: portOf(cfg.POP3Addr), POP3TLSPort: portOf(cfg.POP3TLSAddr),
		SubmissionPort: portOf(cfg.SubmissionAddr), SubmissionTLSPort: portOf(cfg.SubmissionTLSAddr)}
	s.Core.Hosting.Mailer = core.QueueCredentialMailer{Service: s.Core}
	s.Core.Hosting.CredentialsChanged = func(ctx context.Context, mailboxID int64) {
		hub.Publish(ctx, mailhub.KindCredentials, mailboxID)
	}
	if tlsConfig == nil {
		s.Log.Warn("no TLS certificate (--tls-cert/--tls-key): IMAP, POP3 and submission listeners are off")
		return nil
	}
	listen := func(addr string, implicit, ownTLS bool) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		// POP3 and IMAP do their own implicit TLS handshake (pop3.Server.ImplicitTLS,
		// imapd.Server.ServeImplicitTLS).
		if implicit && !ownTLS {
			return tls.NewListener(ln, tlsConfig), nil
		}
		return ln, nil
	}
	serve := func(name string, fn func() error) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := fn(); err != nil {
				s.Log.Error(name+" server stopped", "err", err)
			}
		}()
	}
	imapSrv := imapd.New(imapd.Config{Core: s.Core, Hub: hub, TLS: tlsConfig, Hostname: cfg.Hostname,
		Log: s.Log.With("listener", "imap"), PollInterval: opts.IMAPPollInterval})
	pop3Backend := &pop3d.Backend{Core: s.Core, Hub: hub}
	subQueue := submissionQueue{core: s.Core}
	var addrs MailAddrs
	for _, l := range []struct {
		addr     string
		implicit bool
		kind     string
		bound    *string
	}{
		{cfg.IMAPAddr, false, "imap", &addrs.IMAP}, {cfg.IMAPTLSAddr, true, "imap", &addrs.IMAPTLS},
		{cfg.POP3Addr, false, "pop3", &addrs.POP3}, {cfg.POP3TLSAddr, true, "pop3", &addrs.POP3TLS},
		{cfg.SubmissionAddr, false, "submission", &addrs.Submission}, {cfg.SubmissionTLSAddr, true, "submission", &addrs.SubmissionTLS},
	} {
		if !enabled(l.addr) {
			continue
		}
		ln, err := listen(l.addr, l.implicit, l.kind == "pop3" || l.kind == "imap")
		if err != nil {
			return err
		}
		*l.bound = ln.Addr().String()
		switch l.kind {
		case "imap":
			if l.implicit {
				serve("imap", func() error { return imapSrv.ServeImplicitTLS(ln) })
			} else {
				serve("imap", func() error { return imapSrv.Serve(ln) })
			}
		case "pop3":
			p := &pop3.Server{Backend: pop3Backend, TLSConfig: tlsConfig, Hostname: cfg.Hostname, Logger: s.Log.With("listener", "pop3")}
			p.ImplicitTLS = l.implicit
			s.mu.Lock()
			s.closers = append(s.closers, func(context.Context) error { return p.Close() })
			s.mu.Unlock()
			serve("pop3", func() error {
				if err := p.Serve(ln); err != nil && !errors.Is(err, pop3.ErrServerClosed) {
					return err
				}
				return nil
			})
		case "submission":
			sc := submission.Config{Core: s.Core, Queue: subQueue, TLS: tlsConfig, Hostname: cfg.Hostname, Log: s.Log.With("listener", "submission")}
			if l.implicit {
				sc.TLS, sc.InsecureAuth = nil, true
			}
			sub := submission.New(sc)
			s.mu.Lock()
			s.closers = append(s.closers, sub.Close)
			s.mu.Unlock()
			serve("submission", func() error { return sub.Serve(ln) })
		}
	}
	s.mu.Lock()
	s.closers = append([]func(context.Context) error{func(context.Context) error { return imapSrv.Close() }}, s.closers...)
	s.mailAddrs = addrs
	s.mu.Unlock()
	return nil
}

// MailAddrs reports the bound hosted-mailbox listener addresses.
func (s *Server) MailAddrs() MailAddrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mailAddrs
}
