package server

import (
	"crypto/tls"
	"fmt"
	"net"

	"postfach/internal/smtpd"
)

// SMTPAddr is the bound inbound SMTP address after ListenSMTP (useful with port 0).
func (s *Server) SMTPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.smtpAddr
}

// ListenSMTP binds the inbound SMTP listener (the MX for inbound addresses and hosted
// domains) unless it is configured "off", and serves until Close. STARTTLS is offered when
// a certificate is configured.
func (s *Server) ListenSMTP() error {
	if s.Config.SMTPAddr == "" || s.Config.SMTPAddr == "off" {
		return nil
	}
	var tlsConfig *tls.Config
	if s.Config.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.Config.TLSCertFile, s.Config.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("smtp: load certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", s.Config.SMTPAddr)
	if err != nil {
		return fmt.Errorf("listen smtp %s: %w", s.Config.SMTPAddr, err)
	}
	srv := smtpd.New(s.DB, smtpd.Config{
		Hostname:      s.Config.Hostname,
		InboundDomain: s.Config.InboundDomain,
		TLS:           tlsConfig,
		Log:           s.Log.With("listener", "smtp"),
	})
	s.mu.Lock()
	s.smtpAddr = ln.Addr().String()
	s.listeners = append(s.listeners, ln)
	s.closers = append(s.closers, srv.Close)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil {
			s.Log.Error("smtp server stopped", "err", err)
		}
	}()
	return nil
}
