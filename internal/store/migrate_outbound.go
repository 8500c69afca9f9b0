package store

// schemaOutbound extends the outbound queue of schemaMail for delivery (X2): what the row
// carries (a user's message or a bounce), the chosen reply-to option for the policy check at
// dequeue, the transport decided at enqueue, the time of the first attempt (the give-up
// deadline counts from it), the policy rule that refused a send, and the state of the copy
// into the mailbox's Sent folder (C9). recipients holds a JSON array with one state per
// envelope recipient. dkim_keys holds one sealed signing key per domain (X5).
const schemaOutbound = `
ALTER TABLE outbound_queue ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE outbound_queue ADD COLUMN reply_key TEXT NOT NULL DEFAULT '';
ALTER TABLE outbound_queue ADD COLUMN transport TEXT NOT NULL DEFAULT 'system';
ALTER TABLE outbound_queue ADD COLUMN transport_mailbox_id BIGINT;
ALTER TABLE outbound_queue ADD COLUMN first_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbound_queue ADD COLUMN refused_rule TEXT NOT NULL DEFAULT '';
ALTER TABLE outbound_queue ADD COLUMN sent_copy TEXT NOT NULL DEFAULT '';
CREATE INDEX outbound_queue_lease ON outbound_queue (state, lease_until);
CREATE INDEX outbound_queue_message ON outbound_queue (tenant_id, message_id);
CREATE INDEX outbound_attempts_queue ON outbound_attempts (queue_id, attempt);
CREATE TABLE dkim_keys (
	id {{ID}},
	domain TEXT NOT NULL UNIQUE,
	selector TEXT NOT NULL,
	private_key {{BLOB}} NOT NULL,
	created_at BIGINT NOT NULL
)`
