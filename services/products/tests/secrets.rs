//! Integration tier: `DATABASE_URL_SECRET` read from Secrets Manager (a moto server at
//! `WHARF_TEST_SQS_ENDPOINT`) — with static keys, and with an IRSA-style web-identity token —
//! and the clear exit 1 when the secret cannot be read. An unreachable moto fails these tests.

#![cfg(feature = "integration")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use sqlx::Connection;
use wharf_testkit::{PgTestDb, TempDir, unique};

fn moto() -> String {
    std::env::var("WHARF_TEST_SQS_ENDPOINT")
        .expect("WHARF_TEST_SQS_ENDPOINT (a moto server) is required: eval \"$(scripts/dev-services.sh up)\"")
}

async fn put_secret(name: &str, value: &str) {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto())
        .credentials_provider(Credentials::new("test", "test", None, None, "wharf-test"))
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    client.create_secret().name(name).secret_string(value).send().await.expect("moto's Secrets Manager answers");
}

/// The binary with only AWS settings and the secret's id: no `DATABASE_URL`.
fn products(secret: &str, aws: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_products"));
    command
        .env_clear()
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_REGION", "us-east-1")
        .env("DATABASE_URL_SECRET", secret)
        .envs(aws.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn static_keys() -> Vec<(&'static str, String)> {
    vec![("AWS_ACCESS_KEY_ID", "test".to_owned()), ("AWS_SECRET_ACCESS_KEY", "test".to_owned())]
}

/// Starts the process and returns it with its base URL and everything it logged until ready.
fn start(mut command: Command) -> (Child, String, String) {
    let mut child = command.spawn().expect("spawn products");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut logged = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        logged.push_str(&line);
        logged.push('\n');
        let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if log["message"] == "ready" {
            let addr = log["addr"].as_str().unwrap().to_owned();
            return (child, format!("http://{addr}"), logged);
        }
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!("products did not become ready:\n{logged}{}", String::from_utf8_lossy(&output.stderr));
}

fn stop(mut child: Child) -> String {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "products did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    }
    rest
}

/// Creates a product through the API and finds its row in `db` directly.
async fn a_row_lands_in(db: &PgTestDb, base: &str) {
    let name = unique("secret-row");
    let created = reqwest::Client::new()
        .post(format!("{base}/api/products"))
        .json(&serde_json::json!({"name": name, "price": 1.5, "stock": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM products WHERE name = $1").bind(&name).fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 1, "the product was written to the database the secret names");
}

#[tokio::test]
async fn the_database_comes_from_the_secret_in_its_rds_form() {
    let db = PgTestDb::create().await;
    // The RDS form, as Terraform writes it; the password must survive URL encoding.
    let url = reqwest::Url::parse(&db.url).unwrap();
    let secret = serde_json::json!({
        "engine": "postgres", "username": url.username(), "password": "p@ss:w/rd",
        "host": url.host_str().unwrap(), "port": url.port().unwrap_or(5432), "dbname": url.path().trim_start_matches('/'),
    });
    let id = unique("microservices-poc/ProductService/ConnectionString");
    put_secret(&id, &secret.to_string()).await;

    let (child, base, logged) = start(products(&id, &static_keys()));
    a_row_lands_in(&db, &base).await;
    let logged = logged + &stop(child);
    assert!(!logged.contains("p@ss") && !logged.contains("p%40ss"), "the secret's value is never logged:\n{logged}");
    db.drop_db().await;
}

#[tokio::test]
async fn irsa_web_identity_credentials_read_the_secret() {
    let db = PgTestDb::create().await;
    let id = unique("microservices-poc/ProductService/ConnectionString");
    put_secret(&id, &db.url).await;
    // What EKS injects into a pod whose service account carries a role: no static keys at all.
    let dir = TempDir::new("irsa");
    let token = dir.path().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWljcm9zZXJ2aWNlczpwcm9kdWN0c2VydmljZSJ9.c2ln",
    )
    .unwrap();
    let irsa = vec![
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/productservice".to_owned()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        ("AWS_ROLE_SESSION_NAME", "productservice".to_owned()),
    ];
    let (child, base, _) = start(products(&id, &irsa));
    a_row_lands_in(&db, &base).await;
    stop(child);
    db.drop_db().await;
}

#[tokio::test]
async fn a_missing_secret_is_a_clear_exit_1() {
    let id = unique("microservices-poc/Missing/ConnectionString");
    let output = products(&id, &static_keys()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&id) && stderr.contains("DATABASE_URL_SECRET"), "{stderr}");
    assert!(stderr.contains("ResourceNotFoundException: "), "{stderr}");
    assert!(!stderr.contains("SdkBody") && !stderr.contains("headers"), "the reason, not the raw response: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn a_directly_set_database_url_wins_over_the_secret() {
    let dir = TempDir::new("direct");
    let mut command = products("no-such-secret", &static_keys());
    command.env("DATABASE_URL", dir.sqlite_url("products.db"));
    let (child, base, _) = start(command);
    assert_eq!(reqwest::get(format!("{base}/health/ready")).await.unwrap().status(), 200);
    stop(child);
}
