package store

// schemaHosted holds what hosted mailboxes on a tenant's own domain need (H1, H10, H11):
//
//   - tenant_domains: a domain a tenant claims, with the token it must publish as
//     "postfach-verify=<token>" in a TXT record; verified_at stays 0 until that is seen.
//   - hosted_credentials: one password per hosted mailbox, sealed (to show it again) and
//     hashed with argon2id (to check logins without unsealing); generation counts new
//     passwords so open IMAP/POP3/SMTP sessions of an older generation end.
//   - imap_folders / imap_messages: the IMAP view of a mailbox. A message row in messages
//     appears in a folder under a UID; an expunged entry stays as a tombstone (expunged =
//     TRUE, folder_id NULL after a folder is deleted) so that it is never offered again and
//     its UID never reused. Every change bumps the folder's highest_modseq and stamps the
//     row, which is how sessions on any instance find what changed since they last looked.
//   - auth_attempts: every login attempt of the mail protocols, for the log and the
//     per-address and per-prefix throttle (no account lockout).
const schemaHosted = `
CREATE TABLE tenant_domains (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	domain TEXT NOT NULL UNIQUE,
	verify_token TEXT NOT NULL,
	verified_at BIGINT NOT NULL DEFAULT 0,
	checked_at BIGINT NOT NULL DEFAULT 0,
	check_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id, domain);
CREATE TABLE hosted_credentials (
	mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	password_sealed {{BLOB}} NOT NULL,
	password_hash TEXT NOT NULL,
	generation INTEGER NOT NULL DEFAULT 1,
	updated_at BIGINT NOT NULL
);
CREATE TABLE imap_folders (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	special_use TEXT NOT NULL DEFAULT '',
	uid_validity BIGINT NOT NULL,
	uid_next BIGINT NOT NULL DEFAULT 1,
	highest_modseq BIGINT NOT NULL DEFAULT 1,
	subscribed {{BOOL}} NOT NULL DEFAULT TRUE,
	created_at BIGINT NOT NULL,
	UNIQUE (mailbox_id, name)
);
CREATE TABLE imap_messages (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	folder_id BIGINT,
	uid BIGINT NOT NULL,
	message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	flags TEXT NOT NULL DEFAULT '',
	modseq BIGINT NOT NULL,
	expunged {{BOOL}} NOT NULL DEFAULT FALSE,
	internal_date BIGINT NOT NULL,
	size BIGINT NOT NULL,
	UNIQUE (folder_id, uid)
);
CREATE INDEX imap_messages_mailbox_message ON imap_messages (mailbox_id, message_id);
CREATE INDEX imap_messages_folder_modseq ON imap_messages (folder_id, modseq);
CREATE TABLE auth_attempts (
	id {{ID}},
	protocol TEXT NOT NULL,
	username TEXT NOT NULL,
	remote_ip TEXT NOT NULL,
	prefix TEXT NOT NULL,
	outcome TEXT NOT NULL,
	mailbox_id BIGINT,
	created_at BIGINT NOT NULL
);
CREATE INDEX auth_attempts_ip ON auth_attempts (remote_ip, created_at);
CREATE INDEX auth_attempts_prefix ON auth_attempts (prefix, created_at)`
