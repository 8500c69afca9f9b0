package api

import (
	"io"
	"net/http"

	"postfach/internal/core"
	"postfach/internal/httpx"
)

func remoteIP(r *http.Request) string { return httpx.RemoteIP(r) }

func readAll(r *http.Request, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, max))
	if err != nil {
		return nil, &core.Error{Status: http.StatusBadRequest, Key: "error.bad_request", Params: map[string]string{"detail": err.Error()}}
	}
	return data, nil
}
