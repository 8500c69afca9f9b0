package store

// schemaFiling links a message to every contact it is filed at (A4): a sent message goes to
// the contact of each recipient, not only the first. messages.contact_id keeps the first
// contact for the code and clients that read one; the listing by contact reads both.
const schemaFiling = `
CREATE TABLE message_contacts (
	tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	contact_id BIGINT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
	PRIMARY KEY (message_id, contact_id)
);
CREATE INDEX message_contacts_contact ON message_contacts (tenant_id, contact_id, message_id)`
