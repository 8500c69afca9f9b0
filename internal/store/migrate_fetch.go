package store

// schemaFetch holds the state of fetching external accounts over IMAP and POP3 (C1, C4,
// C10, C2). The rules it encodes:
//   - what was imported is remembered per (folder, UIDVALIDITY) and UID, or per POP3 UIDL,
//     never by \Seen or a date (RFC 9051 §2.3.1.1: a UID means something only together with
//     its folder's UIDVALIDITY);
//   - a row of fetch_imap_uids / fetch_pop3_uidls is written in the same transaction as the
//     message, so "stored" and "remembered as stored" cannot disagree after a crash;
//   - fetch_sources carries a lease: exactly one instance fetches a source at a time, and
//     every commit of fetched mail re-checks that the lease is still held (a fence).
const schemaFetch = `
CREATE TABLE fetch_sources (
	mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	lease_holder TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	due_at BIGINT NOT NULL DEFAULT 0,
	want_folders {{BOOL}} NOT NULL DEFAULT FALSE,
	idle {{BOOL}} NOT NULL DEFAULT FALSE,
	last_run_at BIGINT NOT NULL DEFAULT 0,
	last_ok_at BIGINT NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	failures INTEGER NOT NULL DEFAULT 0,
	imported BIGINT NOT NULL DEFAULT 0,
	folders_synced_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX fetch_sources_due ON fetch_sources (due_at);
CREATE TABLE fetch_imap_folders (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	folder TEXT NOT NULL,
	uidvalidity BIGINT NOT NULL,
	highest_uid BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (mailbox_id, folder)
);
CREATE TABLE fetch_imap_uids (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	folder TEXT NOT NULL,
	uidvalidity BIGINT NOT NULL,
	uid BIGINT NOT NULL,
	message_id BIGINT,
	expunged {{BOOL}} NOT NULL DEFAULT FALSE,
	PRIMARY KEY (mailbox_id, folder, uidvalidity, uid)
);
CREATE TABLE fetch_pop3_uidls (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uidl TEXT NOT NULL,
	message_id BIGINT,
	PRIMARY KEY (mailbox_id, uidl)
);
CREATE TABLE account_folders (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	delimiter TEXT NOT NULL DEFAULT '',
	special_use TEXT NOT NULL DEFAULT '',
	selectable {{BOOL}} NOT NULL DEFAULT TRUE,
	import {{BOOL}} NOT NULL DEFAULT FALSE,
	seen_at BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, name)
);
CREATE TABLE account_oauth (
	mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	provider TEXT NOT NULL,
	token_sealed {{BLOB}},
	expires_at BIGINT NOT NULL DEFAULT 0,
	state TEXT NOT NULL DEFAULT 'ok',
	error TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);
CREATE TABLE oauth_apps (
	provider TEXT PRIMARY KEY,
	client_id TEXT NOT NULL,
	secret_sealed {{BLOB}},
	auth_url TEXT NOT NULL,
	token_url TEXT NOT NULL,
	scopes TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE oauth_flows (
	state TEXT PRIMARY KEY,
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	provider TEXT NOT NULL,
	verifier TEXT NOT NULL,
	redirect_url TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX messages_mailbox_sha ON messages (mailbox_id, sha256)`
