-- Notifications, and the inbox that makes event handling idempotent: one row per OrderPlaced
-- event id, written in the same transaction as the notification it produced.
CREATE TABLE notifications (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL CHECK (kind IN ('Email', 'Sms')),
    recipient      TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('Pending', 'Sent', 'Failed')),
    order_id       INTEGER,
    correlation_id TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_at     TEXT    NOT NULL,
    sent_at        TEXT
);
CREATE INDEX notifications_recipient ON notifications (recipient);
CREATE INDEX notifications_pending ON notifications (id) WHERE status = 'Pending';

CREATE TABLE inbox (
    event_id        TEXT    PRIMARY KEY,
    notification_id INTEGER REFERENCES notifications (id),
    received_at     TEXT    NOT NULL
);
