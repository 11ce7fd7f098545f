//! Trace export: the OpenTelemetry tracer provider behind `OTEL_EXPORTER_OTLP_ENDPOINT`.
//!
//! Configured only by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`), read through
//! [`Env`] so a bad value is a start-up error like any other. With no endpoint there is no
//! provider, no exporter thread and no OpenTelemetry layer: spans stay plain `tracing` spans.
//!
//! Spans leave in batches over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces` from the batch
//! processor's own thread; a request never waits on the collector. W3C trace ids are used as
//! they are: X-Ray accepts them from the ADOT collector, so no X-Ray id generator is needed.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider, SpanExporter};
use wharf_config::Env;

/// The `OTEL_TRACES_SAMPLER` choices of the OpenTelemetry specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerKind {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio,
}

/// How a service exports its traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL; `None` turns tracing off.
    pub endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`, or the service's own name (`OrderService`).
    pub service_name: String,
    pub sampler: SamplerKind,
    /// `OTEL_TRACES_SAMPLER_ARG`: the ratio for the ratio samplers.
    pub sampler_ratio: f64,
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs added to the resource; a
    /// `deployment.environment` here overrides the default `local`.
    pub resource_attributes: Vec<(String, String)>,
}

impl TraceConfig {
    /// Reads the variables; `default_service_name` is the `service.name` when
    /// `OTEL_SERVICE_NAME` is unset.
    pub fn from_env(env: &mut Env, default_service_name: &str) -> Self {
        let endpoint = env.optional("OTEL_EXPORTER_OTLP_ENDPOINT", "an http:// or https:// URL", |v| {
            (v.starts_with("http://") || v.starts_with("https://")).then(|| v.trim_end_matches('/').to_owned())
        });
        let service_name = env.string("OTEL_SERVICE_NAME", default_service_name);
        let sampler = env.choice(
            "OTEL_TRACES_SAMPLER",
            SamplerKind::ParentBasedAlwaysOn,
            &[
                ("always_on", SamplerKind::AlwaysOn),
                ("always_off", SamplerKind::AlwaysOff),
                ("traceidratio", SamplerKind::TraceIdRatio),
                ("parentbased_always_on", SamplerKind::ParentBasedAlwaysOn),
                ("parentbased_always_off", SamplerKind::ParentBasedAlwaysOff),
                ("parentbased_traceidratio", SamplerKind::ParentBasedTraceIdRatio),
            ],
        );
        let sampler_ratio = env.parse("OTEL_TRACES_SAMPLER_ARG", 1.0, "a number from 0 to 1", |v| {
            v.trim().parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r))
        });
        let resource_attributes = env.parse(
            "OTEL_RESOURCE_ATTRIBUTES",
            Vec::new(),
            "comma-separated key=value pairs",
            parse_resource_attributes,
        );
        Self { endpoint, service_name, sampler, sampler_ratio, resource_attributes }
    }

    /// Tracing switched off: what tests and `wharf` commands that serve nothing use.
    pub fn off(service_name: &str) -> Self {
        Self {
            endpoint: None,
            service_name: service_name.to_owned(),
            sampler: SamplerKind::ParentBasedAlwaysOn,
            sampler_ratio: 1.0,
            resource_attributes: Vec::new(),
        }
    }

    pub(crate) fn sampler(&self) -> Sampler {
        let ratio = Sampler::TraceIdRatioBased(self.sampler_ratio);
        match self.sampler {
            SamplerKind::AlwaysOn => Sampler::AlwaysOn,
            SamplerKind::AlwaysOff => Sampler::AlwaysOff,
            SamplerKind::TraceIdRatio => ratio,
            SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerKind::ParentBasedTraceIdRatio => Sampler::ParentBased(Box::new(ratio)),
        }
    }

    /// `service.name`, `service.version`, `deployment.environment` and `OTEL_RESOURCE_ATTRIBUTES`.
    pub(crate) fn resource(&self) -> Resource {
        let environment = self
            .resource_attributes
            .iter()
            .find(|(key, _)| key == "deployment.environment" || key == "deployment.environment.name")
            .map_or_else(|| "local".to_owned(), |(_, value)| value.clone());
        let extra = self.resource_attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
        Resource::builder_empty()
            .with_attributes(extra)
            .with_service_name(self.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("deployment.environment", environment),
            ])
            .build()
    }
}

fn parse_resource_attributes(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// Why the OTLP exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP trace exporter for {endpoint}: {reason}")]
pub struct ExporterError {
    pub endpoint: String,
    pub reason: String,
}

/// The provider exporting to `config`'s endpoint in batches, or `None` when tracing is off.
pub(crate) fn otlp_provider(config: &TraceConfig) -> Result<Option<SdkTracerProvider>, ExporterError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let Some(endpoint) = &config.endpoint else { return Ok(None) };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .map_err(|err| ExporterError { endpoint: endpoint.clone(), reason: err.to_string() })?;
    Ok(Some(provider_with(config, BatchSpanProcessor::builder(exporter).build())))
}

/// A provider with `config`'s sampler and resource, ending spans into `processor`.
pub(crate) fn provider_with(
    config: &TraceConfig,
    processor: impl opentelemetry_sdk::trace::SpanProcessor + 'static,
) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(config.sampler())
        .with_resource(config.resource())
        .build()
}

/// A provider that hands every ended span to `exporter` at once (tests read them back).
pub(crate) fn provider_exporting_to(config: &TraceConfig, exporter: impl SpanExporter + 'static) -> SdkTracerProvider {
    provider_with(config, opentelemetry_sdk::trace::SimpleSpanProcessor::new(exporter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_off_with_the_services_own_name() {
        let mut env = Env::from_pairs(Vec::<(String, String)>::new());
        let config = TraceConfig::from_env(&mut env, "OrderService");
        assert!(env.finish().is_ok());
        assert_eq!(config, TraceConfig::off("OrderService"));
    }

    #[test]
    fn standard_variables_are_read_and_bad_ones_named() {
        let mut env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_SERVICE_NAME", "Orders-Blue"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod, team=shop"),
        ]);
        let config = TraceConfig::from_env(&mut env, "OrderService");
        assert!(env.finish().is_ok());
        assert_eq!(config.endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(config.service_name, "Orders-Blue");
        assert_eq!(config.sampler, SamplerKind::ParentBasedTraceIdRatio);
        assert!((config.sampler_ratio - 0.25).abs() < f64::EPSILON);
        let resource = config.resource();
        let get = |key: &'static str| resource.get(&opentelemetry::Key::from_static_str(key)).map(|v| v.to_string());
        assert_eq!(get("deployment.environment").as_deref(), Some("prod"));
        assert_eq!(get("service.name").as_deref(), Some("Orders-Blue"));
        assert_eq!(get("team").as_deref(), Some("shop"));

        let mut env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ]);
        let _ = TraceConfig::from_env(&mut env, "OrderService");
        assert_eq!(env.finish().map_err(|e| e.0.len()).err(), Some(4));
    }
}
