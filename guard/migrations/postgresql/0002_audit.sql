-- depends: 0001_review_items
-- The audit chain as it shipped before migrations (guard 0.1.0): one row per record, its canonical text.
CREATE TABLE IF NOT EXISTS guard_audit (seq BIGINT PRIMARY KEY, record TEXT NOT NULL);
