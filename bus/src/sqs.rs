//! The Amazon SQS backend (aws-sdk-sqs): the bus in AWS, and against LocalStack or moto locally
//! (`AWS_ENDPOINT_URL`).
//!
//! - **Queues**: `Q` and its dead-letter queue (by default `Q-dlq`; whatever `Q`'s redrive policy
//!   names otherwise). The URL comes from `SQS_QUEUE_URL` or GetQueueUrl. Provisioning (local use
//!   only; Terraform in AWS) creates both and sets `Q`'s redrive policy with
//!   `maxReceiveCount = BUS_MAX_ATTEMPTS`; it converges, so running it again is harmless.
//! - **Publishing** returns after SendMessage succeeded. Metadata travels as String message
//!   attributes. Transient failures are retried until the publish timeout.
//! - **Receiving** long-polls (up to 20 s, batches of up to 10, never more than `prefetch`
//!   unsettled), and keeps extending the visibility of messages whose handler is still running.
//! - **Attempts** are SQS's `ApproximateReceiveCount`: every receive counts, whether the previous
//!   one was retried on purpose or its consumer died — and so does a receive whose response no
//!   handler saw (a long poll abandoned when its consumer was killed). Attempts therefore only
//!   grow: a redelivery is a later attempt, not necessarily the next number, and a message may
//!   reach the dead-letter threshold with fewer handler runs than attempts. The redrive policy
//!   moves a message received `maxReceiveCount` times to the DLQ on its next receive; the bus
//!   dead-letters explicitly before that (retry on the last attempt, poison) so the reason is
//!   recorded as the `dead-letter-reason` attribute. Messages moved by the redrive policy itself
//!   carry no reason.
//! - **Retry later** is ChangeMessageVisibility(delay), rounded up to whole seconds (SQS's unit),
//!   at most 12 hours. **Ack** is DeleteMessage, batched (DeleteMessageBatch) across concurrent
//!   acks. **Dead-letter** sends a copy with the reason to the DLQ, then deletes the original.
//! - **Dead-letter queue operations** receive DLQ messages with a visibility timeout long enough
//!   to see each once, then make the ones they leave alone visible again.

mod consume;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::Region;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::BoxFuture;
use crate::bus::{Bus, DeadLetter, Replay, SubscribeOptions, within_check_timeout};
use crate::config::{BackendKind, BusConfig};
use crate::depth::Depth;
use crate::envelope::Envelope;
use crate::error::{BusError, SettleFailure};
use crate::message::{Message, Metadata, headers};
use crate::queue::QueueName;
use crate::subscription::Subscription;

/// What a check or a count says when the backend stays silent past [`crate::CHECK_TIMEOUT`].
const NO_ANSWER: &str = "no answer from SQS";
const BACKEND: BackendKind = BackendKind::Sqs;

/// Longest visibility timeout / delay SQS accepts: 12 hours.
const MAX_VISIBILITY_SECS: i32 = 43_200;

/// How long dead-letter queue operations hide the messages they look at.
const SCAN_VISIBILITY_SECS: i32 = 120;

/// The SQS bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsBus {
    inner: Arc<Sqs>,
}

#[derive(Debug)]
pub(crate) struct Sqs {
    client: Client,
    max_attempts: u32,
    publish_timeout: Duration,
    /// Queue URLs by queue name, seeded with `SQS_QUEUE_URL` for the configured queue.
    urls: Mutex<HashMap<String, String>>,
    /// Dead-letter queue URLs by source queue name.
    dlq_urls: Mutex<HashMap<String, String>>,
}

impl SqsBus {
    /// A bus using the standard AWS configuration chain (credentials, region), with
    /// `config.aws_region` and `config.aws_endpoint_url` taking precedence when set.
    pub async fn connect(config: &BusConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.aws_region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.aws_endpoint_url {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let sdk = loader.load().await;
        Self::with_client(Client::new(&sdk), config)
    }

    /// A bus over an already configured client (tests, or a service sharing its SDK config).
    pub fn with_client(client: Client, config: &BusConfig) -> Self {
        let mut urls = HashMap::new();
        if let Some(url) = &config.sqs_queue_url {
            urls.insert(config.queue.to_string(), url.clone());
        }
        Self {
            inner: Arc::new(Sqs {
                client,
                max_attempts: config.max_attempts,
                publish_timeout: config.publish_timeout,
                urls: Mutex::new(urls),
                dlq_urls: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// Maps an SDK error to the bus's error kinds.
fn sqs_error<E, R>(operation: &'static str, target: &str, started: Instant, err: &SdkError<E, R>) -> BusError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = DisplayErrorContext(err).to_string();
    let target = target.to_owned();
    match err {
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or_default();
            if code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist") {
                BusError::QueueNotFound { backend: BACKEND, queue: target, detail }
            } else if code.contains("Throttl")
                || code.contains("ServiceUnavailable")
                || code.contains("InternalError")
                || code.contains("InternalFailure")
                || code.contains("RequestTimeout")
            {
                BusError::Backend { backend: BACKEND, operation, target, detail }
            } else {
                BusError::Rejected { backend: BACKEND, operation, target, detail }
            }
        }
        // Could not connect, timed out, or got an unparsable answer: the endpoint is the problem.
        _ => BusError::Unavailable { backend: BACKEND, waited: started.elapsed(), detail },
    }
}

/// The SQS String attribute `value`.
fn attribute(value: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().ok()
}

/// The bus metadata read from a received message's attributes.
fn metadata_of(message: &aws_sdk_sqs::types::Message) -> Metadata {
    Metadata::from_lookup(|key| attribute_text(message, key))
}

fn attribute_text(message: &aws_sdk_sqs::types::Message, key: &str) -> Option<String> {
    message.message_attributes()?.get(key)?.string_value().map(str::to_owned)
}

fn system_attribute(message: &aws_sdk_sqs::types::Message, key: &MessageSystemAttributeName) -> Option<String> {
    message.attributes()?.get(key).cloned()
}

/// Whole seconds for SQS, rounded up, within SQS's limits.
fn seconds(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(MAX_VISIBILITY_SECS).min(MAX_VISIBILITY_SECS)
}

impl Sqs {
    /// The URL of `queue`.
    pub(crate) async fn url(&self, queue: &str) -> Result<String, BusError> {
        if let Some(url) = self.urls.lock().unwrap_or_else(|p| p.into_inner()).get(queue) {
            return Ok(url.clone());
        }
        let started = Instant::now();
        let output = self
            .client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .map_err(|err| sqs_error("resolve", queue, started, &err))?;
        let url = output.queue_url().unwrap_or_default().to_owned();
        self.urls.lock().unwrap_or_else(|p| p.into_inner()).insert(queue.to_owned(), url.clone());
        Ok(url)
    }

    /// The URL of `queue`'s dead-letter queue: the target of its redrive policy, else `<queue>-dlq`.
    pub(crate) async fn dlq_url(&self, queue: &QueueName) -> Result<String, BusError> {
        if let Some(url) = self.dlq_urls.lock().unwrap_or_else(|p| p.into_inner()).get(queue.as_str()) {
            return Ok(url.clone());
        }
        let started = Instant::now();
        let main = self.url(queue.as_str()).await?;
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&main)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|err| sqs_error("read the redrive policy of", queue.as_str(), started, &err))?;
        let target = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .and_then(|policy| serde_json::from_str::<serde_json::Value>(policy).ok())
            .and_then(|policy| policy["deadLetterTargetArn"].as_str().map(str::to_owned))
            .and_then(|arn| arn.rsplit(':').next().map(str::to_owned));
        let name = target.unwrap_or_else(|| queue.dead_letter());
        let url = self.url(&name).await?;
        self.dlq_urls.lock().unwrap_or_else(|p| p.into_inner()).insert(queue.to_string(), url.clone());
        Ok(url)
    }

    /// The sum of the `attributes` (message counts) of the queue at `url`.
    async fn count(&self, url: &str, name: &str, attributes: &[QueueAttributeName]) -> Result<u64, BusError> {
        let started = Instant::now();
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(attributes.to_vec()))
            .send()
            .await
            .map_err(|err| sqs_error("count the messages of", name, started, &err))?;
        let values = output.attributes();
        Ok(attributes
            .iter()
            .filter_map(|attribute| values.and_then(|v| v.get(attribute)))
            .filter_map(|value| value.parse::<u64>().ok())
            .sum())
    }

    async fn create_queue(&self, name: &str, started: Instant) -> Result<String, BusError> {
        let output = self
            .client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|err| sqs_error("create", name, started, &err))?;
        let url = output.queue_url().unwrap_or_default().to_owned();
        self.urls.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), url.clone());
        Ok(url)
    }

    async fn provision(&self, queue: &QueueName) -> Result<(), BusError> {
        let started = Instant::now();
        let dlq = queue.dead_letter();
        // Attributes are set after creation rather than passed to CreateQueue: CreateQueue fails
        // on an existing queue whose attributes differ, SetQueueAttributes converges.
        let dlq_url = self.create_queue(&dlq, started).await?;
        self.client
            .set_queue_attributes()
            .queue_url(&dlq_url)
            // Dead letters wait for an operator: keep them as long as SQS allows (14 days).
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .map_err(|err| sqs_error("configure", &dlq, started, &err))?;
        let dlq_arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|err| sqs_error("read the ARN of", &dlq, started, &err))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        let url = self.create_queue(queue.as_str(), started).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": self.max_attempts.to_string(),
        });
        self.client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|err| sqs_error("configure", queue.as_str(), started, &err))?;
        self.dlq_urls.lock().unwrap_or_else(|p| p.into_inner()).insert(queue.to_string(), dlq_url);
        Ok(())
    }

    /// Sends `body` with `attributes` to the queue at `url`, retrying transient failures until
    /// the publish timeout.
    pub(crate) async fn send(
        &self,
        url: &str,
        target: &str,
        body: &[u8],
        attributes: &[(&str, String)],
    ) -> Result<(), BusError> {
        let body = std::str::from_utf8(body).map_err(|err| BusError::Rejected {
            backend: BACKEND,
            operation: "publish to",
            target: target.to_owned(),
            detail: format!("SQS message bodies must be UTF-8 text: {err}"),
        })?;
        let started = Instant::now();
        let deadline = crate::later(started, self.publish_timeout);
        let mut pause = Duration::from_millis(100);
        loop {
            let mut request = self.client.send_message().queue_url(url).message_body(body);
            for (key, value) in attributes {
                if let Some(value) = attribute(value) {
                    request = request.message_attributes(*key, value);
                }
            }
            let error = match tokio::time::timeout_at(deadline, request.send()).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) => sqs_error("publish to", target, started, &err),
                Err(_) => BusError::Unavailable {
                    backend: BACKEND,
                    waited: started.elapsed(),
                    detail: "SendMessage did not answer before the publish timeout".to_owned(),
                },
            };
            let now = Instant::now();
            if !error.is_transient() || now >= deadline {
                return Err(match error {
                    BusError::Backend { detail, .. } => {
                        BusError::Unavailable { backend: BACKEND, waited: started.elapsed(), detail }
                    }
                    other => other,
                });
            }
            tracing::debug!(%target, %error, "SendMessage failed; retrying");
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Receives up to 10 messages from `url`, hiding them for `visibility` seconds.
    async fn receive(
        &self,
        url: &str,
        target: &str,
        max: i32,
        wait_secs: i32,
        visibility: i32,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, BusError> {
        let started = Instant::now();
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_secs.clamp(0, 20))
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::DeadLetterQueueSourceArn)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|err| sqs_error("receive from", target, started, &err))?;
        Ok(output.messages().to_vec())
    }

    /// Deletes up to 10 messages; returns, per receipt handle, whether its delete succeeded.
    pub(crate) async fn delete_batch(&self, url: &str, receipts: &[String]) -> Vec<Result<(), SettleFailure>> {
        let started = Instant::now();
        let mut request = self.client.delete_message_batch().queue_url(url);
        for (index, receipt) in receipts.iter().enumerate() {
            match DeleteMessageBatchRequestEntry::builder().id(index.to_string()).receipt_handle(receipt).build() {
                Ok(entry) => request = request.entries(entry),
                Err(err) => {
                    let refused =
                        || SettleFailure::Refused { code: "InvalidEntry".to_owned(), message: err.to_string() };
                    return receipts.iter().map(|_| Err(refused())).collect();
                }
            }
        }
        match request.send().await {
            Ok(output) => {
                let mut results: Vec<Result<(), SettleFailure>> = receipts.iter().map(|_| Ok(())).collect();
                for failed in output.failed() {
                    if let Some(slot) = failed.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                        let (code, message) =
                            (failed.code().to_owned(), failed.message().unwrap_or_default().to_owned());
                        *slot = Err(SettleFailure::Refused { code, message });
                    }
                }
                results
            }
            Err(err) => receipts.iter().map(|_| Err(sqs_error("delete from", url, started, &err).into())).collect(),
        }
    }

    /// Sets one message's visibility timeout.
    pub(crate) async fn change_visibility(&self, url: &str, receipt: &str, secs: i32) -> Result<(), BusError> {
        let started = Instant::now();
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map(drop)
            .map_err(|err| sqs_error("change the visibility in", url, started, &err))
    }

    /// Sets the visibility timeout of up to 10 messages at once (best effort).
    pub(crate) async fn change_visibility_batch(&self, url: &str, receipts: &[String], secs: i32) {
        for chunk in receipts.chunks(10) {
            let mut request = self.client.change_message_visibility_batch().queue_url(url);
            for (index, receipt) in chunk.iter().enumerate() {
                if let Ok(entry) = ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(secs)
                    .build()
                {
                    request = request.entries(entry);
                }
            }
            if let Err(err) = request.send().await {
                tracing::warn!(error = %DisplayErrorContext(&err), "ChangeMessageVisibilityBatch failed");
            }
        }
    }

    /// The next up-to-`want` messages of the dead-letter queue at `dlq`, hidden from other
    /// scans for [`SCAN_VISIBILITY_SECS`] so a walk through the queue sees each message once.
    /// Empty means the queue has nothing (more) to show: the one-second long poll asks every
    /// SQS server, unlike a short poll.
    async fn scan(&self, dlq: &str, target: &str, want: usize) -> Result<Vec<aws_sdk_sqs::types::Message>, BusError> {
        let want = i32::try_from(want.min(10)).unwrap_or(10);
        self.receive(dlq, target, want, 1, SCAN_VISIBILITY_SECS).await
    }
}

fn receipt_of(message: &aws_sdk_sqs::types::Message) -> String {
    message.receipt_handle().unwrap_or_default().to_owned()
}

/// What a dead-letter queue message says about itself.
fn dead_letter_of(message: &aws_sdk_sqs::types::Message) -> DeadLetter {
    let body = message.body().unwrap_or_default().as_bytes().to_vec();
    let id = Envelope::from_json(&body)
        .map(|e| e.id().to_string())
        .unwrap_or_else(|_| message.message_id().unwrap_or_default().to_owned());
    let reason = attribute_text(message, headers::DEAD_LETTER_REASON).or_else(|| {
        system_attribute(message, &MessageSystemAttributeName::DeadLetterQueueSourceArn).map(|source| {
            format!("moved by the SQS redrive policy of {source}: received more than maxReceiveCount times")
        })
    });
    DeadLetter {
        id,
        body,
        metadata: metadata_of(message),
        reason,
        attempts: attribute_text(message, headers::DEAD_LETTER_ATTEMPTS).and_then(|n| n.parse().ok()),
        dead_lettered_at: attribute_text(message, headers::DEAD_LETTERED_AT)
            .and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok()),
    }
}

impl Bus for SqsBus {
    fn backend(&self) -> BackendKind {
        BACKEND
    }

    fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    fn provision<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.inner.provision(queue))
    }

    fn publish_message<'a>(
        &'a self,
        queue: &'a QueueName,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let url = self.inner.url(queue.as_str()).await?;
            self.inner.send(&url, queue.as_str(), &message.body, &message.metadata.pairs()).await
        })
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a QueueName,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            let url = self.inner.url(queue.as_str()).await?;
            Ok(consume::subscribe(Arc::clone(&self.inner), queue.clone(), url, options))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        queue: &'a QueueName,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(async move {
            let dlq = self.inner.dlq_url(queue).await?;
            let target = queue.dead_letter();
            let mut letters = Vec::new();
            let mut seen = Vec::new();
            let mut result = Ok(());
            while letters.len() < limit {
                match self.inner.scan(&dlq, &target, limit - letters.len()).await {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => {
                        seen.extend(batch.iter().map(receipt_of));
                        letters.extend(batch.iter().map(dead_letter_of));
                    }
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                }
            }
            // Looking must not delay them: make them visible again at once.
            self.inner.change_visibility_batch(&dlq, &seen, 0).await;
            result.map(|()| letters)
        })
    }

    fn replay<'a>(&'a self, queue: &'a QueueName, which: &'a Replay) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let main = self.inner.url(queue.as_str()).await?;
            let dlq = self.inner.dlq_url(queue).await?;
            let target = queue.dead_letter();
            let mut kept = Vec::new();
            let mut moved = 0;
            let mut result = Ok(());
            'scan: loop {
                let batch = match self.inner.scan(&dlq, &target, 10).await {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => batch,
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                };
                for message in &batch {
                    let letter = dead_letter_of(message);
                    if !which.selects(&letter.id) {
                        kept.push(receipt_of(message));
                        continue;
                    }
                    // A new message: SQS starts its receive count (the attempts) from zero.
                    if let Err(err) =
                        self.inner.send(&main, queue.as_str(), &letter.body, &letter.metadata.pairs()).await
                    {
                        kept.push(receipt_of(message));
                        result = Err(err);
                        break 'scan;
                    }
                    if let Some(Err(err)) = self.inner.delete_batch(&dlq, &[receipt_of(message)]).await.first() {
                        tracing::warn!(
                            id = %letter.id,
                            error = %err,
                            "replayed dead letter could not be deleted from the DLQ"
                        );
                    }
                    moved += 1;
                }
            }
            self.inner.change_visibility_batch(&dlq, &kept, 0).await;
            match result {
                Err(err) if moved == 0 => Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, moved, "replay stopped early");
                    Ok(moved)
                }
                Ok(()) => Ok(moved),
            }
        })
    }

    fn purge_dead_letters<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<usize, BusError>> {
        // Receive-and-delete rather than PurgeQueue: it reports a count, takes effect at once, and
        // is not limited to one call a minute.
        Box::pin(async move {
            let dlq = self.inner.dlq_url(queue).await?;
            let target = queue.dead_letter();
            let mut purged = 0;
            loop {
                let batch = self.inner.scan(&dlq, &target, 10).await?;
                if batch.is_empty() {
                    return Ok(purged);
                }
                let receipts: Vec<String> = batch.iter().map(receipt_of).collect();
                let results = self.inner.delete_batch(&dlq, &receipts).await;
                purged += results.iter().filter(|result| result.is_ok()).count();
                if let Some(Err(err)) = results.iter().find(|result| result.is_err()) {
                    tracing::warn!(error = %err, "could not delete some dead letters");
                }
            }
        })
    }

    fn check<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(within_check_timeout(BACKEND, NO_ANSWER, async move {
            let url = self.inner.url(queue.as_str()).await?;
            self.inner.count(&url, queue.as_str(), &[QueueAttributeName::ApproximateNumberOfMessages]).await.map(|_| ())
        }))
    }

    fn queue_depth<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<Depth, BusError>> {
        Box::pin(within_check_timeout(BACKEND, NO_ANSWER, async move {
            let main = self.inner.url(queue.as_str()).await?;
            let dlq = self.inner.dlq_url(queue).await?;
            let dlq_name = queue.dead_letter();
            let waiting = self.inner.count(&main, queue.as_str(), &[QueueAttributeName::ApproximateNumberOfMessages]);
            let dead = self.inner.count(
                &dlq,
                &dlq_name,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ],
            );
            let (waiting, dead_letters) = tokio::try_join!(waiting, dead)?;
            Ok(Depth { waiting, dead_letters })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_seconds_within_sqs_limits() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_millis(1000)), 1);
        assert_eq!(seconds(Duration::from_millis(1001)), 2);
        assert_eq!(seconds(Duration::from_secs(100_000)), MAX_VISIBILITY_SECS);
    }
}
