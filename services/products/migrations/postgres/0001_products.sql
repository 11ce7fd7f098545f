-- The product catalogue. Money is stored in whole cents; identity ids are never reused.
CREATE TABLE products (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price_cents BIGINT      NOT NULL CHECK (price_cents >= 0),
    description TEXT        NOT NULL DEFAULT '',
    stock       INTEGER     NOT NULL CHECK (stock >= 0),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
