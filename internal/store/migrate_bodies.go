package store

// schemaMessageBodies keeps a message's raw bytes in a table of their own. SQLite stores a
// row's columns in order and continues a large value on a chain of overflow pages: with raw
// in the middle of messages, reading status or created_at of a 50 KB message walked its
// whole chain, and every UPDATE of the row (the queue's state after each delivery attempt,
// filing by hand, a mailbox merge) wrote the body into the WAL again. message_bodies is
// keyed by the message's id (the rowid in SQLite, so new bodies append) and written once.
//
// messages.raw stays, always empty: dropping it would rebuild the table of every install,
// and a backup taken before this version restores into it; Restore then moves such bodies
// over with the same statements (moveBodies).
const schemaMessageBodies = `
CREATE TABLE message_bodies (
	message_id {{KEY}} REFERENCES messages(id) ON DELETE CASCADE,
	tenant_id BIGINT NOT NULL,
	raw {{BLOB}} NOT NULL
);
` + moveBodies

// moveBodies moves raw bytes still held in messages.raw into message_bodies.
const moveBodies = `
INSERT INTO message_bodies (message_id, tenant_id, raw) SELECT id, tenant_id, raw FROM messages WHERE length(raw) > 0;
UPDATE messages SET raw = {{EMPTYBLOB}} WHERE length(raw) > 0`

// bodiesVersion is the schema version from which messages.raw is empty.
const bodiesVersion = 13

// schemaDropHashIndex drops the index on (mailbox_id, sha256). Its keys are random, so every
// stored message dirtied a leaf page of its own in every commit. The look-ups it served go
// through the (tenant_id, message_id) index like the inbound duplicate check: equal bytes
// carry equal Message-IDs, and mail without one is stored under an id made from its hash
// (mailstore). Such mail stored before this version got a random id and is found by its hash
// among the account's older rows (MessageByHashBeforeV14).
const schemaDropHashIndex = `DROP INDEX messages_mailbox_sha`

// hashIndexDroppedVersion is the schema version of schemaDropHashIndex.
const hashIndexDroppedVersion = 14

// schemaRepliesIndex indexes what each message answers (In-Reply-To), only for messages that
// answer something. When a message is stored after a reply to it (a sent message fetched from
// the Sent folder after the customer's answer came into the inbox), the reply is found here
// and joins the message's conversation (mailstore). The index is partial so that mail that
// answers nothing costs no index entry.
const schemaRepliesIndex = `CREATE INDEX messages_tenant_in_reply_to ON messages (tenant_id, in_reply_to) WHERE in_reply_to <> ''`
