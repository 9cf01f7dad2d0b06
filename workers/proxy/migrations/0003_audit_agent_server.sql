-- GET /admin/audit?agent=&server= walks this from the agent's newest record on that server and
-- stops at the page. Without it, SQLite reads every record of the agent (audit_agent_at) to find
-- the few on one server: linear in the agent's records.
CREATE INDEX IF NOT EXISTS audit_agent_server_at ON audit (agent, server, at);
