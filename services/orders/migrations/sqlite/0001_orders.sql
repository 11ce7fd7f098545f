-- Orders, the transactional outbox and idempotency keys: written together in one transaction.
CREATE TABLE orders (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id     INTEGER NOT NULL CHECK (product_id >= 1),
    quantity       INTEGER NOT NULL CHECK (quantity >= 1),
    customer_email TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);

-- One row per event to publish; `envelope` is the event exactly as the bus carries it. A relay claims rows with a lease (claimed_until) so that two
-- relays never publish the same row at once (claimed_until: Unix milliseconds, comparable on
-- both backends), and marks each row published after the bus
-- confirmed it.
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    event_version  INTEGER NOT NULL,
    occurred_at    TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    traceparent    TEXT,
    envelope       TEXT    NOT NULL,
    claimed_until  INTEGER,
    claimed_by     TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    published_at   TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    fingerprint  TEXT    NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    created_at   TEXT    NOT NULL
);
