package store

// schemaInbound holds what received mail needs beyond the messages table: the mailboxes a
// message involves (for the VIP rule, H7/H8), the quarantine of messages that could not be
// parsed, and the out-of-office state (H3). Threads need no table of their own: thread_id
// is the id of the conversation's first stored message.
const schemaInbound = `
CREATE TABLE message_mailboxes (
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	PRIMARY KEY (message_id, mailbox_id, role)
);
CREATE INDEX message_mailboxes_mailbox ON message_mailboxes (tenant_id, mailbox_id);
CREATE INDEX messages_tenant_thread ON messages (tenant_id, thread_id);
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
CREATE TABLE quarantine (
	id {{ID}},
	tenant_id BIGINT REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT REFERENCES mailboxes(id) ON DELETE SET NULL,
	source TEXT NOT NULL,
	envelope_from TEXT NOT NULL DEFAULT '',
	recipients TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL,
	size BIGINT NOT NULL,
	sha256 TEXT NOT NULL,
	raw {{BLOB}} NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX quarantine_tenant ON quarantine (tenant_id, created_at);
CREATE TABLE auto_reply_log (
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	sender TEXT NOT NULL,
	last_sent_at BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, sender)
);
CREATE TABLE auto_replies (
	id {{ID}},
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	in_reply_to_message BIGINT REFERENCES messages(id) ON DELETE SET NULL,
	recipient TEXT NOT NULL,
	raw {{BLOB}} NOT NULL,
	state TEXT NOT NULL DEFAULT 'pending',
	created_at BIGINT NOT NULL
);
CREATE INDEX auto_replies_state ON auto_replies (state, created_at)`
