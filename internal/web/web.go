// Package web is Postfach's server-rendered UI (German and English).
package web

import (
	"log/slog"
	"net/http"

	"postfach/internal/core"
	"postfach/internal/httpx"
	"postfach/internal/i18n"
)

// Deps is what the UI needs from the rest of the program.
type Deps struct {
	Core *core.Service
	Auth *httpx.Auth
	Text *i18n.Catalog
	Log  *slog.Logger
}

// UI serves the pages.
type UI struct{ d Deps }

// New builds the UI.
func New(d Deps) *UI { return &UI{d: d} }

// Register adds the UI's routes to mux.
func (u *UI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>Postfach</title><h1>Postfach</h1><p>API: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a></p>"))
	})
}
