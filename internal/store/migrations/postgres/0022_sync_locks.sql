-- Postdesk schema, version 22: on PostgreSQL each serve process holds its
-- mailboxes with session advisory locks on one dedicated connection, and is
-- alive while that connection is: the heartbeat row names the connection's
-- backend (pid and start time, from pg_stat_activity), so the others see a
-- killed process gone within a round. SQLite leaves both at 0 (leases and
-- heartbeats as before). The index serves the one statement that renews all
-- of a process's leases.
ALTER TABLE sync_processes ADD COLUMN backend_pid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_processes ADD COLUMN backend_start BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sync_leases_owner ON sync_leases (owner);
