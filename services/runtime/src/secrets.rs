//! Settings kept in AWS Secrets Manager: `DATABASE_URL_SECRET` and `SQS_QUEUE_URL_SECRET` name a
//! secret whose value becomes `DATABASE_URL` / `SQS_QUEUE_URL` when those are not set directly.
//!
//! Secrets are read once, before the configuration, through the AWS SDK's default credential
//! chain — so on EKS the pod's IRSA web-identity token (`AWS_ROLE_ARN` +
//! `AWS_WEB_IDENTITY_TOKEN_FILE`) is used unchanged, and `AWS_ENDPOINT_URL` points the client at
//! LocalStack or moto. A value read from a secret is marked secret in [`Env`], so even a
//! configuration error about it never prints it; errors name the secret, never its value.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use wharf_config::Env;

/// How long one Secrets Manager call may take before start-up gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A setting and the variable naming the secret that may hold it.
#[derive(Debug, Clone, Copy)]
struct SecretSetting {
    /// The variable the service reads (`DATABASE_URL`).
    target: &'static str,
    /// The variable naming the secret (`DATABASE_URL_SECRET`).
    source: &'static str,
    /// How the secret's value is read.
    format: ValueFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueFormat {
    /// A connection string: plain, `{"url": …}`, or the RDS form
    /// `{"username","password","host","port","dbname"}`.
    DatabaseUrl,
    /// A URL: plain or `{"url": …}`.
    Url,
}

const SETTINGS: [SecretSetting; 2] = [
    SecretSetting { target: "DATABASE_URL", source: "DATABASE_URL_SECRET", format: ValueFormat::DatabaseUrl },
    SecretSetting { target: "SQS_QUEUE_URL", source: "SQS_QUEUE_URL_SECRET", format: ValueFormat::Url },
];

/// Why a secret could not become a setting. Names the secret and the variable, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager refused or could not be reached (credentials, permissions, no such secret).
    #[error("cannot read secret {id:?} named by {variable}: {reason}")]
    Read { variable: &'static str, id: String, reason: String },
    /// The secret exists but holds no string, or a string of no accepted form.
    #[error("secret {id:?} named by {variable} is not {expected}")]
    Format { variable: &'static str, id: String, expected: &'static str },
}

/// Whether any setting is to be read from a secret: only then is the AWS SDK configured.
pub fn wanted(env: &Env) -> bool {
    SETTINGS.iter().any(|s| env.raw(s.source).is_some() && env.raw(s.target).is_none())
}

/// Reads every secret-backed setting that is not set directly into `env`, marked secret.
pub async fn resolve(env: &mut Env) -> Result<(), SecretError> {
    if !wanted(env) {
        return Ok(());
    }
    let timeouts = TimeoutConfig::builder().operation_timeout(CALL_TIMEOUT).build();
    let sdk = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).load().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    for setting in SETTINGS {
        let Some(id) = env.raw(setting.source).map(str::to_owned) else { continue };
        if env.raw(setting.target).is_some() {
            // A directly set value wins: a developer can override one setting without the secret.
            continue;
        }
        let answer = client.get_secret_value().secret_id(&id).send().await.map_err(|err| SecretError::Read {
            variable: setting.source,
            id: id.clone(),
            reason: reason(&err),
        })?;
        let Some(text) = answer.secret_string() else {
            return Err(SecretError::Format { variable: setting.source, id, expected: "a text secret" });
        };
        let value = match setting.format {
            ValueFormat::DatabaseUrl => database_url(text),
            ValueFormat::Url => url(text),
        };
        let Some(value) = value else {
            let expected = match setting.format {
                ValueFormat::DatabaseUrl => "a connection string, {\"url\": …} or the RDS JSON form",
                ValueFormat::Url => "a URL or {\"url\": …}",
            };
            return Err(SecretError::Format { variable: setting.source, id, expected });
        };
        tracing::debug!(variable = setting.target, secret = %id, "setting read from Secrets Manager");
        env.set_secret(setting.target, value);
    }
    Ok(())
}

/// Why Secrets Manager did not answer, in one line: its error code and message when it refused
/// (`ResourceNotFoundException: …`, `AccessDeniedException: …`), else each cause once (no
/// credentials, endpoint unreachable, timeout) — never the raw response.
fn reason<E>(err: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error,
{
    if let Some(code) = err.code() {
        return format!("{code}: {}", err.message().unwrap_or("no message"));
    }
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `{"url": …}`: the form a secret takes when it also carries other fields.
#[derive(Deserialize)]
struct UrlSecret {
    url: String,
}

/// The JSON RDS (and Secrets Manager's rotation templates) store for a database user.
#[derive(Deserialize)]
struct RdsSecret {
    username: String,
    password: String,
    host: String,
    #[serde(default)]
    port: Option<serde_json::Value>,
    #[serde(default)]
    dbname: Option<String>,
    #[serde(default)]
    engine: Option<String>,
}

/// Characters a user name or password may keep in a URL's user-info; everything else is
/// percent-encoded (RDS-generated passwords contain `:`, `@`, `/`, `#`…).
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn database_url(text: &str) -> Option<String> {
    let text = text.trim();
    if !text.starts_with('{') {
        return (!text.is_empty()).then(|| text.to_owned());
    }
    if let Ok(UrlSecret { url }) = serde_json::from_str(text) {
        return Some(url);
    }
    let rds: RdsSecret = serde_json::from_str(text).ok()?;
    if rds.engine.as_deref().is_some_and(|engine| !engine.starts_with("postgres")) {
        return None;
    }
    let port = match rds.port {
        None => 5432,
        Some(serde_json::Value::Number(n)) => u16::try_from(n.as_u64()?).ok()?,
        Some(serde_json::Value::String(s)) => s.parse().ok()?,
        Some(_) => return None,
    };
    let user = utf8_percent_encode(&rds.username, USERINFO);
    let password = utf8_percent_encode(&rds.password, USERINFO);
    let database = rds.dbname.as_deref().unwrap_or("postgres");
    Some(format!("postgres://{user}:{password}@{}:{port}/{database}", rds.host))
}

fn url(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with('{') {
        return serde_json::from_str::<UrlSecret>(text).ok().map(|secret| secret.url);
    }
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_or_url_secret_is_taken_as_it_is() {
        assert_eq!(database_url(" postgres://u:p@h/db\n").as_deref(), Some("postgres://u:p@h/db"));
        assert_eq!(database_url(r#"{"url":"postgres://u@h/db","note":"x"}"#).as_deref(), Some("postgres://u@h/db"));
        assert_eq!(url(r#"{"url":"http://q/1/notification-queue"}"#).as_deref(), Some("http://q/1/notification-queue"));
        assert_eq!(url("  "), None);
    }

    #[test]
    fn the_rds_form_becomes_a_url_with_its_password_encoded() {
        let secret = r#"{"username":"order_svc","password":"p@ss:w/rd#1","engine":"postgres",
                        "host":"db.internal","port":5432,"dbname":"orderdb"}"#;
        assert_eq!(
            database_url(secret).as_deref(),
            Some("postgres://order_svc:p%40ss%3Aw%2Frd%231@db.internal:5432/orderdb")
        );
        let string_port = r#"{"username":"u","password":"p","host":"h","port":"6432"}"#;
        assert_eq!(database_url(string_port).as_deref(), Some("postgres://u:p@h:6432/postgres"));
    }

    #[test]
    fn other_json_is_refused() {
        assert_eq!(database_url(r#"{"username":"u"}"#), None);
        assert_eq!(database_url(r#"{"username":"u","password":"p","host":"h","engine":"mysql"}"#), None);
        assert_eq!(url(r#"{"queue":"x"}"#), None);
    }
}
