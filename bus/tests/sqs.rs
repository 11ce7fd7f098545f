//! What only SQS needs proving: the bus starts from configuration (endpoint, region, queue name
//! or URL) through the standard AWS configuration chain, provisioning converges and sets the
//! redrive policy, and a missing queue is reported as such. Needs an SQS API
//! (`WHARF_TEST_SQS_ENDPOINT`, e.g. a moto server) and `--features integration`.

#![cfg(feature = "integration")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use support::{ping, sqs_client, sqs_endpoint, unique};
use wharf_bus::{BackendKind, BusConfig, BusError, QueueName, SubscribeOptions};

fn config(queue: &QueueName) -> BusConfig {
    let vars = [
        ("BUS", "sqs".to_owned()),
        ("BUS_QUEUE", queue.to_string()),
        ("BUS_MAX_ATTEMPTS", "4".to_owned()),
        ("BUS_PROVISION", "true".to_owned()),
        ("AWS_ENDPOINT_URL", sqs_endpoint()),
        ("AWS_REGION", std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned())),
    ];
    BusConfig::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap()
}

async fn delete_queues(queue: &QueueName) {
    let client = sqs_client();
    for name in [queue.to_string(), queue.dead_letter()] {
        if let Ok(output) = client.get_queue_url().queue_name(name).send().await
            && let Some(url) = output.queue_url()
        {
            let _ = client.delete_queue().queue_url(url).send().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_from_configuration_provisions_with_a_redrive_policy_and_round_trips() {
    // Credentials come from the standard chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    let queue = QueueName::parse(&unique("sqs-config")).unwrap();
    let config = config(&queue);
    assert_eq!(config.backend, BackendKind::Sqs);
    let bus = wharf_bus::connect(&config).await.unwrap();
    // Provisioning again converges rather than failing.
    bus.provision(&queue).await.unwrap();

    let client = sqs_client();
    let url = client.get_queue_url().queue_name(queue.as_str()).send().await.unwrap().queue_url().unwrap().to_owned();
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(attributes.attributes().unwrap().get(&QueueAttributeName::RedrivePolicy).unwrap())
            .unwrap();
    assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "4");
    assert!(policy["deadLetterTargetArn"].as_str().unwrap().ends_with(&format!(":{}", queue.dead_letter())));

    // A second bus, given the queue URL instead of resolving it, sees the same queue.
    let by_url = BusConfig { sqs_queue_url: Some(url), provision: false, ..config };
    let other = wharf_bus::connect(&by_url).await.unwrap();
    let envelope = ping(5);
    bus.publish(&queue, &envelope).await.unwrap();
    let options = SubscribeOptions { poll_wait: Duration::from_secs(1), ..SubscribeOptions::default() };
    let mut subscription = other.subscribe(&queue, &options).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(20), subscription.next()).await.unwrap().unwrap();
    assert_eq!(delivery.envelope().unwrap(), &envelope);
    assert_eq!(delivery.max_attempts(), 4);
    delivery.ack().await.unwrap();
    drop(subscription);
    delete_queues(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_reported_as_such() {
    let queue = QueueName::parse(&unique("sqs-absent")).unwrap();
    let config = BusConfig { provision: false, ..config(&queue) };
    let err = wharf_bus::connect(&config).await.unwrap_err();
    assert!(matches!(err, BusError::QueueNotFound { .. }), "{err}");
    let bus = wharf_bus::SqsBus::with_client(sqs_client(), &config);
    let err = wharf_bus::Bus::publish(&bus, &queue, &ping(1)).await.unwrap_err();
    assert!(matches!(err, BusError::QueueNotFound { .. }), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_a_publish_after_the_publish_timeout() {
    let queue = QueueName::parse(&unique("sqs-unreachable")).unwrap();
    let config = BusConfig {
        aws_endpoint_url: Some("http://127.0.0.1:1".to_owned()),
        sqs_queue_url: Some(format!("http://127.0.0.1:1/000000000000/{queue}")),
        publish_timeout: Duration::from_millis(1500),
        provision: false,
        ..config(&queue)
    };
    let bus = wharf_bus::SqsBus::connect(&config).await;
    let started = std::time::Instant::now();
    let err = wharf_bus::Bus::publish(&bus, &queue, &ping(1)).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable { backend: BackendKind::Sqs, .. }), "{err}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10), "gave up after {waited:?}");
}
