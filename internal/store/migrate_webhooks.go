package store

// schemaWebhooks holds the tenants' webhook endpoints and the outbox of events to deliver
// (X1). An event is fanned out to one delivery row per subscribed endpoint in the
// transaction of the change that caused it, so a rolled-back change sends nothing and a
// committed one is sent at least once. The webhooks package owns the SQL of both tables.
const schemaWebhooks = `
CREATE TABLE webhook_endpoints (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	url TEXT NOT NULL,
	events TEXT NOT NULL,
	secret_sealed {{BLOB}} NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	active {{BOOL}} NOT NULL DEFAULT TRUE,
	created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, active);
CREATE TABLE webhook_deliveries (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
	event_id TEXT NOT NULL,
	event TEXT NOT NULL,
	body TEXT NOT NULL,
	state TEXT NOT NULL DEFAULT 'pending',
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id)`
