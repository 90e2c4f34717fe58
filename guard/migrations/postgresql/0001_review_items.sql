-- The review queue as it shipped before migrations (guard 0.1.0): IF NOT EXISTS, so a deployment that
-- already has the table takes this migration as applied without change.
CREATE TABLE IF NOT EXISTS guard_review_items (
    id TEXT PRIMARY KEY, request_id TEXT NOT NULL, direction TEXT NOT NULL, route TEXT NOT NULL,
    tier TEXT NOT NULL, policy_version TEXT NOT NULL, texts TEXT NOT NULL, findings TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, deadline DOUBLE PRECISION NOT NULL, on_timeout TEXT NOT NULL,
    deferred INTEGER NOT NULL, forward TEXT NOT NULL, status TEXT NOT NULL, reviewer TEXT NOT NULL,
    note TEXT NOT NULL, edited_texts TEXT, decided_at DOUBLE PRECISION, consumed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS guard_review_items_status_created ON guard_review_items (status, created_at);
