#!/usr/bin/env bash
# Creates what wharf needs in an emulated AWS: the order-event queue with its dead-letter queue
# (redrive after maxReceiveCount receives, SQS-managed encryption on both) and the Secrets
# Manager secrets the services read at start-up (a connection string per service, the queue URL).
#
# LocalStack runs it from /etc/localstack/init/ready.d when its services are ready (awslocal).
# The same script runs unchanged against any endpoint given in AWS_ENDPOINT_URL (moto, or a
# LocalStack on the host) with the plain aws CLI. Running it again converges: existing queues get
# the wanted attributes, existing secrets the wanted value.
#
# Every name is a default that the environment can change:
#   QUEUE_NAME (notification-queue), DLQ_NAME (<queue>-dlq), MAX_RECEIVE_COUNT (5),
#   SECRET_PREFIX (microservices-poc), DB_HOST (postgres), DB_PORT (5432),
#   DB_SUFFIX (appended to every database and role name; empty), and the roles' passwords
#   PRODUCTSERVICE_DB_PASSWORD, ORDERSERVICE_DB_PASSWORD, NOTIFICATIONSERVICE_DB_PASSWORD.
set -euo pipefail

queue="${QUEUE_NAME:-notification-queue}"
dlq="${DLQ_NAME:-$queue-dlq}"
max_receive_count="${MAX_RECEIVE_COUNT:-5}"
prefix="${SECRET_PREFIX:-microservices-poc}"
db_host="${DB_HOST:-postgres}"
db_port="${DB_PORT:-5432}"
suffix="${DB_SUFFIX:-}"

log() { echo "wharf-aws: $*"; }

if [ -n "${AWS_ENDPOINT_URL:-}" ] || ! command -v awslocal >/dev/null; then
  # An emulator accepts any credentials; a real account's are never defaulted here.
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  fi
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
  awscli() { aws --endpoint-url "${AWS_ENDPOINT_URL:-http://localhost:4566}" --output text "$@"; }
else
  awscli() { awslocal --output text "$@"; }
fi

# create-queue is idempotent only for identical attributes, so create bare and then converge.
dlq_url=$(awscli sqs create-queue --queue-name "$dlq" --query QueueUrl)
awscli sqs set-queue-attributes --queue-url "$dlq_url" --attributes SqsManagedSseEnabled=true >/dev/null
dlq_arn=$(awscli sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn)
queue_url=$(awscli sqs create-queue --queue-name "$queue" --query QueueUrl)
# RedrivePolicy is itself a JSON document, passed as a string inside the attributes' JSON.
attributes=$(printf '{"SqsManagedSseEnabled":"true","RedrivePolicy":"{\\"deadLetterTargetArn\\":\\"%s\\",\\"maxReceiveCount\\":\\"%s\\"}"}' \
  "$dlq_arn" "$max_receive_count")
awscli sqs set-queue-attributes --queue-url "$queue_url" --attributes "$attributes" >/dev/null
log "queue $queue -> $queue_url (dead letters: $dlq after $max_receive_count receives)"

# The value goes through a file: aws CLI v1 would fetch a value that looks like an http:// URL.
value_file=$(mktemp)
trap 'rm -f "$value_file"' EXIT
ensure_secret() { # name value
  printf '%s' "$2" >"$value_file"
  # A new version of an existing secret, or else the secret (whose error, if any, is shown).
  awscli secretsmanager put-secret-value --secret-id "$1" --secret-string "file://$value_file" >/dev/null 2>&1 ||
    awscli secretsmanager create-secret --name "$1" --secret-string "file://$value_file" >/dev/null
  log "secret $1"
}

# The RDS form of a database secret, as Secrets Manager keeps it for RDS-managed credentials.
database_secret() { # role database password
  printf '{"engine":"postgres","host":"%s","port":%s,"username":"%s","password":"%s","dbname":"%s"}' \
    "$db_host" "$db_port" "$1" "$3" "$2"
}

ensure_secret "$prefix/ProductService/ConnectionString" \
  "$(database_secret "productservice$suffix" "productdb$suffix" "${PRODUCTSERVICE_DB_PASSWORD:-productservice-local}")"
ensure_secret "$prefix/OrderService/ConnectionString" \
  "$(database_secret "orderservice$suffix" "orderdb$suffix" "${ORDERSERVICE_DB_PASSWORD:-orderservice-local}")"
ensure_secret "$prefix/NotificationService/ConnectionString" \
  "$(database_secret "notificationservice$suffix" "notificationdb$suffix" "${NOTIFICATIONSERVICE_DB_PASSWORD:-notificationservice-local}")"
ensure_secret "$prefix/SQS/NotificationQueueUrl" "$queue_url"
log "ready"
