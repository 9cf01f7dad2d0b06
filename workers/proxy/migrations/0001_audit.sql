-- One row per authenticated request to the gateway. Never tokens, never
-- tool arguments: who asked for what, what the gateway decided, and how it went.
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,               -- ISO 8601, when the request arrived
  request_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  method TEXT,                    -- JSON-RPC method; "batch" for several
  server TEXT,                    -- backend id for tools/call
  tool TEXT,                      -- backend tool name for tools/call
  decision TEXT NOT NULL,         -- allow | deny_scope | deny_policy | deny_rate | deny_concurrency | deny_input
  outcome TEXT NOT NULL,          -- ok | tool_error | rpc_error | backend_unavailable | http_<status>
  status INTEGER NOT NULL,        -- HTTP status of the answer
  duration_ms REAL NOT NULL,
  bytes_in INTEGER NOT NULL,
  bytes_out INTEGER
);
CREATE INDEX IF NOT EXISTS audit_agent_at ON audit (agent, at);
CREATE INDEX IF NOT EXISTS audit_tool_at ON audit (tool, at);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
