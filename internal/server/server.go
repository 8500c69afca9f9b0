// Package server wires one postfach process together: the database, the secrets box, the
// core use cases, the HTTP edge (API and UI) and the listeners. cmd/postfach calls it; the
// end-to-end tests start it in-process.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"postfach/internal/api"
	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/httpx"
	"postfach/internal/i18n"
	"postfach/internal/netguard"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/web"
)

// Server is a running postfach.
type Server struct {
	Config  config.Config
	DB      *store.DB
	Core    *core.Service
	Handler http.Handler
	Log     *slog.Logger

	HTTPAddr string // the bound address (useful with port 0)

	mu        sync.Mutex
	listeners []net.Listener
	servers   []*http.Server
	closers   []func(context.Context) error // protocol servers, stopped before the database closes
	smtpAddr  string                        // bound inbound SMTP address
	mailAddrs MailAddrs                     // bound IMAP, POP3 and submission addresses (mailservers.go)
	wg        sync.WaitGroup
}

// Open prepares everything that needs no listener: database (migrated), secrets, core, handler.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	key, err := secrets.LoadOrCreateKey(cfg.KeyFile())
	if err != nil {
		db.Close()
		return nil, err
	}
	box, err := secrets.New(key)
	if err != nil {
		db.Close()
		return nil, err
	}
	text, err := i18n.Load()
	if err != nil {
		db.Close()
		return nil, err
	}
	svc := core.New(db, box, text, log)
	svc.InboundDomain = cfg.InboundDomain
	svc.SessionTTL = cfg.SessionTTL
	svc.ConnTest = core.ConnTestNetwork{Policy: netguard.Policy{AllowedPrefixes: cfg.AllowPrivatePrefixes}}
	s := &Server{Config: cfg, DB: db, Core: svc, Log: log}
	s.Handler = s.buildHandler()
	return s, nil
}

func (s *Server) buildHandler() http.Handler {
	auth := &httpx.Auth{Core: s.Core, InsecureCookies: s.Config.InsecureCookies, Log: s.Log}
	mux := http.NewServeMux()
	// /livez answers without touching anything (process is up); /healthz also asks the database.
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DB.SQL().PingContext(r.Context()); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	api.New(s.Core, s.Log).Register(mux)
	web.New(web.Deps{Core: s.Core, Auth: auth, Text: s.Core.Text, Log: s.Log}).Register(mux)
	var h http.Handler = mux
	h = auth.Middleware(h)
	h = httpx.CrossOrigin(h)
	h = httpx.SecurityHeaders(h)
	return h
}

// ListenHTTP binds the HTTP listener and serves until Close.
func (s *Server) ListenHTTP() error {
	ln, err := net.Listen("tcp", s.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", s.Config.HTTPAddr, err)
	}
	s.HTTPAddr = ln.Addr().String()
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Close stops the listeners, waits for requests in flight and closes the database.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	servers, closers := s.servers, s.closers
	s.mu.Unlock()
	for _, srv := range servers {
		_ = srv.Shutdown(ctx)
	}
	for _, c := range closers {
		_ = c(ctx)
	}
	s.wg.Wait()
	return s.DB.Close()
}
