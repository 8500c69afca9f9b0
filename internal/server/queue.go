package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"postfach/internal/mailout"
	"postfach/internal/netguard"
	"postfach/internal/outqueue"
	"postfach/internal/webhooks"
)

// StartQueue runs the outbound queue workers until ctx ends; Close waits for the batch in
// flight. Every instance may run them: rows are claimed with a lease (FOR UPDATE SKIP
// LOCKED on PostgreSQL), so each message is delivered by one instance at a time.
func (s *Server) StartQueue(ctx context.Context) error {
	cfg, err := s.queueConfig()
	if err != nil {
		return err
	}
	q := outqueue.New(s.DB, s.Core, cfg)
	// Sends of this instance hand their rows straight to the workers (core.Intake).
	s.Core.SetIntake(q)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		q.Run(ctx)
	}()
	return nil
}

// queueConfig turns the settings into the queue's transports: the operator's smarthost or
// MX hosts through a plain dialer, the mailboxes' own servers (user-supplied hosts) through
// the dialer that refuses private addresses.
func (s *Server) queueConfig() (outqueue.Config, error) {
	c := s.Config
	guard := &netguard.Dialer{Policy: netguard.Policy{AllowedPrefixes: c.AllowPrivatePrefixes}}
	cfg := outqueue.Config{
		Workers:   c.QueueWorkers,
		Lease:     c.QueueLease,
		Poll:      100 * time.Millisecond,
		Hostname:  c.Hostname,
		System:    &mailout.Deliverer{HeloName: c.Hostname, Resolver: net.DefaultResolver, Logger: s.Log},
		Mailboxes: &mailout.Deliverer{HeloName: c.Hostname, Dial: guard.DialContext, Logger: s.Log},
		SentCopy:  &outqueue.IMAPSentCopy{Core: s.Core, Dial: guard.DialContext},
		// message.sent and message.bounced are written with the outcome, in its transaction.
		Event: webhooks.Enqueue,
		Log:   s.Log.With("component", "outqueue"),
	}
	if c.Smarthost != "" {
		host, portStr, err := net.SplitHostPort(c.Smarthost)
		if err != nil {
			return cfg, fmt.Errorf("smarthost: %w", err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return cfg, fmt.Errorf("smarthost port: %w", err)
		}
		r := &mailout.Route{Host: host, Port: port, Security: mailout.Security(c.SmarthostSecurity), Username: c.SmarthostUser, Password: c.SmarthostPassword}
		if c.SmarthostUser != "" {
			r.Auth = mailout.AuthPlain
		}
		if c.SmarthostCAFile != "" {
			pem, err := os.ReadFile(c.SmarthostCAFile)
			if err != nil {
				return cfg, fmt.Errorf("smarthost CA: %w", err)
			}
			r.RootCAs = x509.NewCertPool()
			if !r.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("smarthost CA %s: no certificates", c.SmarthostCAFile)
			}
		}
		if err := r.Validate(); err != nil {
			return cfg, err
		}
		cfg.Smarthost = r
	}
	return cfg, nil
}
