package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"postfach/internal/webhooks"
)

// StartWebhooks runs the webhook delivery worker (X1) in the background until ctx ends;
// Close waits for the requests in flight. Every instance may run it: deliveries are claimed
// with a lease, so each event goes out from one instance at a time. Endpoints are reached
// only through the SSRF guard with the operator's allowed private ranges.
func (s *Server) StartWebhooks(ctx context.Context) {
	host, _ := os.Hostname()
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	w := &webhooks.Worker{
		DB: s.DB, Secrets: s.Core.Secrets, Policy: s.Core.ConnTest.Policy, Log: s.Log,
		// Host and pid name the instance in the table; the nonce keeps two containers with
		// the same host name and pid apart.
		Owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(nonce[:])),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.Run(ctx)
	}()
}
