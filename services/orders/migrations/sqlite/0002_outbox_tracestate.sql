-- The W3C tracestate of the request that placed the order, beside its traceparent: the relay
-- continues the trace with both, so vendor entries (X-Ray's, for one) reach the consumer.
ALTER TABLE outbox ADD COLUMN tracestate TEXT;
