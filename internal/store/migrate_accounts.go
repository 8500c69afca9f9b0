package store

// schemaAccounts holds what the mail-account lifecycle needs beyond the mailboxes table
// (issue "accounts"): the stored results of the domain health check per sending domain
// (A8), re-checked periodically by a lease so that one instance checks each domain, and
// the log of connection tests (C1), which also serves as the per-user rate limit shared
// by every instance on one database.
const schemaAccounts = `
CREATE TABLE domain_checks (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	domain TEXT NOT NULL,
	outcome TEXT NOT NULL DEFAULT '',
	report TEXT NOT NULL DEFAULT '',
	checked_at BIGINT NOT NULL DEFAULT 0,
	next_check_at BIGINT NOT NULL DEFAULT 0,
	lease_until BIGINT NOT NULL DEFAULT 0,
	UNIQUE (tenant_id, domain)
);
CREATE INDEX domain_checks_due ON domain_checks (next_check_at);
CREATE TABLE connection_tests (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT,
	user_key TEXT NOT NULL,
	protocol TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	port INTEGER NOT NULL DEFAULT 0,
	ok {{BOOL}} NOT NULL DEFAULT FALSE,
	failed_step TEXT NOT NULL DEFAULT '',
	message_key TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX connection_tests_user ON connection_tests (user_key, created_at)`
