-- Orders, the transactional outbox and idempotency keys: written together in one transaction.
CREATE TABLE orders (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id     BIGINT      NOT NULL CHECK (product_id >= 1),
    quantity       INTEGER     NOT NULL CHECK (quantity >= 1),
    customer_email TEXT        NOT NULL,
    status         TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- One row per event to publish; `envelope` is the event exactly as the bus carries it. A relay claims rows with a lease (claimed_until, taken with
-- FOR UPDATE SKIP LOCKED) so that two replicas never publish the same row at once, and marks
-- each row published after the bus confirmed it.
CREATE TABLE outbox (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT        NOT NULL UNIQUE,
    event_type     TEXT        NOT NULL,
    event_version  INTEGER     NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    correlation_id TEXT        NOT NULL,
    traceparent    TEXT,
    envelope       TEXT        NOT NULL,
    claimed_until  BIGINT,
    claimed_by     TEXT,
    attempts       INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT,
    published_at   TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE idempotency_keys (
    key          TEXT        PRIMARY KEY,
    fingerprint  TEXT        NOT NULL,
    order_id     BIGINT      NOT NULL REFERENCES orders (id),
    created_at   TIMESTAMPTZ NOT NULL
);
