//! Which text format `/metrics` answers in, chosen by the scraper's `Accept` header.
//!
//! prometheus-client writes OpenMetrics 1.0. Prometheus asks for OpenMetrics when it can read it
//! and otherwise (as do most other scrapers, curl and `promtool`) expects the classic text format
//! 0.0.4, which differs in a few places: a counter's family is named after its sample
//! (`x_total`), there is no `# UNIT` and no `# EOF`, `info` is a gauge and `unknown` is
//! `untyped`. The translation is line by line over the encoder's own output.

use http::HeaderValue;

/// A metrics text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: the default.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`: when the `Accept` header asks for it.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` with a non-zero quality, Prometheus text otherwise.
    pub fn negotiate(accept: Option<&HeaderValue>) -> Self {
        let Some(accept) = accept.and_then(|v| v.to_str().ok()) else { return Self::PrometheusText };
        let wants_openmetrics = accept.split(',').any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                })
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if wants_openmetrics { Self::OpenMetrics } else { Self::PrometheusText }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> HeaderValue {
        match self {
            Self::PrometheusText => HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            Self::OpenMetrics => HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        }
    }
}

/// Rewrites an OpenMetrics exposition as Prometheus text 0.0.4.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // Counter families seen so far, to drop their `_created` samples.
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => {
                    counters.insert(name.to_owned());
                    (format!("{name}_total"), "counter")
                }
                "info" => (format!("{name}_info"), "gauge"),
                "unknown" => (name.to_owned(), "untyped"),
                "stateset" => (name.to_owned(), "gauge"),
                "gaugehistogram" => (name.to_owned(), "histogram"),
                other => (name.to_owned(), other),
            };
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // HELP comes before TYPE; a counter's family is known from its samples' suffix.
            let is_counter = openmetrics.contains(&format!("# TYPE {name} counter\n"));
            let name = if is_counter { format!("{name}_total") } else { name.to_owned() };
            out.push_str(&format!("# HELP {name} {help}\n"));
            continue;
        }
        // Samples: OpenMetrics may append an exemplar (` # {…} value`), which 0.0.4 cannot carry.
        let sample = match line.find(" # ") {
            Some(at) if !line.starts_with('#') => &line[..at],
            _ => line,
        };
        // A counter's `_created` sample has no place in 0.0.4.
        if counters.iter().any(|c| sample.starts_with(&format!("{c}_created"))) {
            continue;
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_the_format() {
        let negotiate = |v: &'static str| Format::negotiate(Some(&HeaderValue::from_static(v)));
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(negotiate("*/*"), Format::PrometheusText);
        assert_eq!(negotiate("text/plain;version=0.0.4"), Format::PrometheusText);
        // What Prometheus 2.x sends.
        assert_eq!(
            negotiate(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            Format::OpenMetrics
        );
        assert_eq!(negotiate("application/openmetrics-text;q=0, text/plain"), Format::PrometheusText);
    }

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP wharf_http_requests HTTP requests served.\n\
                  # TYPE wharf_http_requests counter\n\
                  wharf_http_requests_total{method=\"GET\"} 3\n\
                  wharf_http_requests_created{method=\"GET\"} 1.7e9\n\
                  # HELP up Up.\n# TYPE up gauge\n# UNIT up seconds\nup 1\n\
                  # TYPE build info\nbuild_info{v=\"1\"} 1\n\
                  # EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP wharf_http_requests_total HTTP requests served.\n\
             # TYPE wharf_http_requests_total counter\n\
             wharf_http_requests_total{method=\"GET\"} 3\n\
             # HELP up Up.\n# TYPE up gauge\nup 1\n\
             # TYPE build_info gauge\nbuild_info{v=\"1\"} 1\n"
        );
    }
}
