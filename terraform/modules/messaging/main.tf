# The OrderPlaced queue and its dead-letter queue. Both are encrypted at rest (SSE-SQS), the queue
# long-polls, and after max_receive_count receives a message moves to the DLQ, which keeps it
# longer so that `wharf dlq` can list and replay it. Only the queue may redrive into the DLQ.

resource "aws_sqs_queue" "dlq" {
  name                      = var.dlq_name
  sqs_managed_sse_enabled   = true
  message_retention_seconds = var.dlq_message_retention_seconds
  receive_wait_time_seconds = var.receive_wait_time_seconds
  tags                      = merge(var.tags, { Service = "notification" })
}

resource "aws_sqs_queue" "queue" {
  name                       = var.queue_name
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = var.visibility_timeout_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  message_retention_seconds  = var.message_retention_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = merge(var.tags, { Service = "notification" })

  lifecycle {
    precondition {
      condition     = var.dlq_message_retention_seconds > var.message_retention_seconds
      error_message = "The DLQ must keep messages longer than the queue, or a message can expire there before it is seen."
    }
  }
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.queue.arn]
  })
}

# Refuse plain-HTTP access to both queues.
resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    queue = aws_sqs_queue.queue
    dlq   = aws_sqs_queue.dlq
  }

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.tls_only[each.key].json
}

data "aws_iam_policy_document" "tls_only" {
  for_each = {
    queue = aws_sqs_queue.queue.arn
    dlq   = aws_sqs_queue.dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue", "sqs:GetQueueAttributes"]
    resources = [each.value]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
