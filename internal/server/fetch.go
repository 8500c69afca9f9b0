package server

import (
	"context"
	"os"
	"strings"

	"postfach/internal/core"
	"postfach/internal/fetch"
)

// oauthEnv names the environment variables of the operator's OAuth2 client registrations,
// per provider: POSTFACH_OAUTH_<PROVIDER>_CLIENT_ID and …_CLIENT_SECRET.
func oauthEnv(provider, field string) string {
	return os.Getenv("POSTFACH_OAUTH_" + strings.ToUpper(provider) + "_" + field)
}

// StartFetching runs the fetcher of external accounts (C1, C2, X6) in the background until
// ctx ends; Close waits for it. Every instance may run it: each account is leased to one
// instance at a time. OAuth2 client registrations from the environment are written to the
// database first, so every instance (and the API's sign-in start) uses the same ones.
func (s *Server) StartFetching(ctx context.Context) {
	for _, p := range []string{core.OAuthMicrosoft, core.OAuthGoogle} {
		id, secret := oauthEnv(p, "CLIENT_ID"), oauthEnv(p, "CLIENT_SECRET")
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
