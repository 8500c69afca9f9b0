package server

import (
	"context"

	"postfach/internal/core"
	"postfach/internal/fetch"
)

// StartFetching runs the fetcher of external accounts (C1, C2, X6) in the background until
// ctx ends; Close waits for it. Every instance may run it: each account is leased to one
// instance at a time. OAuth2 client registrations from the configuration
// (--oauth-microsoft-client-id …) are written to the database first, so every instance (and the API's sign-in start) uses the same ones.
func (s *Server) StartFetching(ctx context.Context) {
	cfg := s.Config
	for p, app := range map[string][2]string{
		core.OAuthMicrosoft: {cfg.OAuthMicrosoftClientID, cfg.OAuthMicrosoftClientSecret},
		core.OAuthGoogle:    {cfg.OAuthGoogleClientID, cfg.OAuthGoogleClientSecret},
	} {
		id, secret := app[0], app[1]
		if id == "" {
			continue
		}
		if err := s.Core.SetOAuthApp(ctx, core.DefaultOAuthApp(p, id, secret)); err != nil {
			s.Log.Warn("fetch: oauth registration not stored", "provider", p, "err", err)
		}
	}
	f := &fetch.Fetcher{DB: s.DB, Core: s.Core, Log: s.Log, Network: s.Core.ConnTest.Policy, Hostname: s.Config.Hostname}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f.Run(ctx)
	}()
}
