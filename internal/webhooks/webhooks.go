// Package webhooks owns outgoing webhooks (X1): the tenants' endpoints, the durable outbox
// of events, and the worker that delivers them.
//
// Delivery rules: an event is written by Enqueue inside the transaction of the change that
// causes it (a received message, a sent or bounced one), as one row per subscribed endpoint;
// a rolled-back change therefore sends nothing, and a committed one is sent at least once.
// Every event has an id that stays the same across retries, so receivers drop duplicates.
// Workers on any number of instances claim due rows with a lease (FOR UPDATE SKIP LOCKED on
// PostgreSQL, the immediate write transaction on SQLite), write "attempt N, next at T"
// before they connect, sign the body with the endpoint's secret, and connect only through
// the SSRF guard (internal/netguard).
package webhooks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"postfach/internal/store"
)

// Event names.
const (
	EventReceived = "message.received"
	EventSent     = "message.sent"
	EventBounced  = "message.bounced"
)

// Events lists every event an endpoint may subscribe to.
func Events() []string { return []string{EventReceived, EventSent, EventBounced} }

// ErrUnknownEvent is returned for an event name not in Events().
var ErrUnknownEvent = errors.New("webhooks: unknown event")

// KnownEvent reports whether name is an event endpoints can subscribe to.
func KnownEvent(name string) bool {
	for _, e := range Events() {
		if e == name {
			return true
		}
	}
	return false
}

// Envelope is the JSON body of every webhook request.
type Envelope struct {
	ID        string          `json:"id"`         // the event id, the same on every retry
	Type      string          `json:"type"`       // one of Events
	TenantID  int64           `json:"tenant_id"`  // the tenant the event belongs to
	CreatedAt int64           `json:"created_at"` // Unix milliseconds of the causing transaction
	Data      json.RawMessage `json:"data"`
}

// eventsColumn stores a subscription list as " a b " so that one LIKE '% a %' finds it.
func eventsColumn(events []string) string { return " " + strings.Join(events, " ") + " " }

func parseEvents(col string) []string { return strings.Fields(col) }

// Subscribed reports whether any active endpoint of the tenant wants event. Callers on a
// hot path ask it once per transaction and skip building payloads nobody receives.
func Subscribed(ctx context.Context, tx *store.Tx, tenantID int64, event string) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = ? AND active = TRUE AND events LIKE ?`,
		tenantID, "% "+event+" %").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("webhooks: subscribed: %w", err)
	}
	return n > 0, nil
}

// Enqueue writes event with payload (marshalled to JSON as the envelope's data) for every
// active endpoint of the tenant subscribed to it, in tx: the event is sent if and only if
// tx commits. A tenant without such endpoints costs one statement and no row.
func Enqueue(ctx context.Context, tx *store.Tx, tenantID int64, event string, payload any) error {
	if !KnownEvent(event) {
		return fmt.Errorf("%w: %q", ErrUnknownEvent, event)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("webhooks: payload of %s: %w", event, err)
	}
	id, err := newEventID()
	if err != nil {
		return err
	}
	body, err := json.Marshal(Envelope{ID: id, Type: event, TenantID: tenantID, CreatedAt: tx.Now(), Data: data})
	if err != nil {
		return fmt.Errorf("webhooks: envelope: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event, body, state, attempts, next_attempt_at, created_at)
		SELECT tenant_id, id, ?, ?, ?, 'pending', 0, ?, ? FROM webhook_endpoints WHERE tenant_id = ? AND active = TRUE AND events LIKE ?`,
		id, event, string(body), tx.Now(), tx.Now(), tenantID, "% "+event+" %")
	if err != nil {
		return fmt.Errorf("webhooks: enqueue %s: %w", event, err)
	}
	return nil
}

func newEventID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhooks: event id: %w", err)
	}
	return "evt_" + hex.EncodeToString(b[:]), nil
}

// Endpoint is a tenant's webhook receiver. The secret is kept sealed; SecretSealed is never
// shown (the plain secret is shown once, when the endpoint is created).
type Endpoint struct {
	ID           int64    `json:"id"`
	TenantID     int64    `json:"tenant_id"`
	URL          string   `json:"url"`
	Events       []string `json:"events"`
	Description  string   `json:"description"`
	Active       bool     `json:"active"`
	CreatedAt    int64    `json:"created_at"`
	SecretSealed []byte   `json:"-"`
}

const endpointCols = `id, tenant_id, url, events, description, active, created_at, secret_sealed`

func scanEndpoint(s interface{ Scan(...any) error }) (Endpoint, error) {
	var e Endpoint
	var events string
	err := s.Scan(&e.ID, &e.TenantID, &e.URL, &events, &e.Description, &e.Active, &e.CreatedAt, &e.SecretSealed)
	e.Events = parseEvents(events)
	return e, err
}

// CreateEndpoint stores an endpoint of tenantID; the caller has validated it and sealed the
// secret.
func CreateEndpoint(ctx context.Context, tx *store.Tx, tenantID int64, e Endpoint) (Endpoint, error) {
	e.TenantID, e.CreatedAt = tenantID, tx.Now()
	err := tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (tenant_id, url, events, secret_sealed, description, active, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, tenantID, e.URL, eventsColumn(e.Events), e.SecretSealed, e.Description, e.Active, e.CreatedAt).Scan(&e.ID)
	if err != nil {
		return e, fmt.Errorf("webhooks: create endpoint: %w", err)
	}
	return e, nil
}

// UpdateEndpoint changes an endpoint's URL, events, description and active flag.
func UpdateEndpoint(ctx context.Context, tx *store.Tx, tenantID int64, e Endpoint) error {
	res, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, active = ? WHERE tenant_id = ? AND id = ?`,
		e.URL, eventsColumn(e.Events), e.Description, e.Active, tenantID, e.ID)
	return affected(res, err, "update endpoint")
}

// GetEndpoint reads one endpoint of the tenant.
func GetEndpoint(ctx context.Context, tx *store.Tx, tenantID, id int64) (Endpoint, error) {
	e, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return e, fmt.Errorf("webhooks: endpoint %d: %w", id, notFound(err))
	}
	return e, nil
}

// ListEndpoints lists the tenant's endpoints.
func ListEndpoints(ctx context.Context, tx *store.Tx, tenantID int64) ([]Endpoint, error) {
	rows, err := tx.Query(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant_id = ? ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	defer rows.Close()
	var out []Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// DeleteEndpoint removes an endpoint and its pending deliveries.
func DeleteEndpoint(ctx context.Context, tx *store.Tx, tenantID, id int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE tenant_id = ? AND endpoint_id = ?`, tenantID, id); err != nil {
		return fmt.Errorf("webhooks: delete deliveries: %w", err)
	}
	res, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete endpoint")
}

// Delivery states.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateFailed    = "failed" // gave up after the last retry
)

// Delivery is one event for one endpoint, with its attempt history summarised.
type Delivery struct {
	ID            int64  `json:"id"`
	TenantID      int64  `json:"tenant_id"`
	EndpointID    int64  `json:"endpoint_id"`
	EventID       string `json:"event_id"`
	Event         string `json:"event"`
	State         string `json:"state"`
	Attempts      int    `json:"attempts"`
	NextAttemptAt int64  `json:"next_attempt_at"`
	LastStatus    int    `json:"last_status"`
	LastError     string `json:"last_error"`
	CreatedAt     int64  `json:"created_at"`
	FinishedAt    int64  `json:"finished_at"`
	Body          string `json:"body,omitempty"`
}

const deliveryCols = `id, tenant_id, endpoint_id, event_id, event, state, attempts, next_attempt_at, last_status, last_error, created_at, finished_at, body`

func scanDelivery(s interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	err := s.Scan(&d.ID, &d.TenantID, &d.EndpointID, &d.EventID, &d.Event, &d.State, &d.Attempts, &d.NextAttemptAt, &d.LastStatus, &d.LastError,
		&d.CreatedAt, &d.FinishedAt, &d.Body)
	return d, err
}

// ListDeliveries lists an endpoint's deliveries, newest first.
func ListDeliveries(ctx context.Context, tx *store.Tx, tenantID, endpointID int64, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := tx.Query(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE tenant_id = ? AND endpoint_id = ? ORDER BY id DESC LIMIT `+fmt.Sprint(limit),
		tenantID, endpointID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func affected(res interface{ RowsAffected() (int64, error) }, err error, what string) error {
	if err != nil {
		return fmt.Errorf("webhooks: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("webhooks: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("webhooks: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// notFound maps sql.ErrNoRows (Tx.QueryRow's Scan is not translated by the store) to
// store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	return err
}
