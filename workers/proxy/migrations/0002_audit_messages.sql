-- One row per message: the messages of a batch each have their own record. They share the
-- request's request_id; message_index is the message's place in the batch (from 0), null for a
-- request that is not a batch.
ALTER TABLE audit ADD COLUMN message_index INTEGER;
CREATE INDEX IF NOT EXISTS audit_request ON audit (request_id);
