//! Identity for the authentication tests: real Cognito tokens from moto's `cognito-idp`, and an
//! issuer of the test's own for what moto cannot issue (expired, not-yet-valid, foreign keys).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use warp::Filter;

/// The password every test user gets (meets Cognito's default policy).
const PASSWORD: &str = "Wharf-test-pass-1";

/// A user pool on moto with two app clients, an `admin` group, and two users.
#[derive(Debug, Clone)]
pub struct CognitoPool {
    endpoint: String,
    pub pool_id: String,
    /// The client the services accept (`AUTH_AUDIENCE`).
    pub client_id: String,
    /// A client of the same pool the services do not accept.
    pub other_client_id: String,
    /// `https://cognito-idp.us-east-1.amazonaws.com/<pool-id>`: what moto puts in `iss`.
    pub issuer: String,
    /// `<moto>/<pool-id>/.well-known/jwks.json`.
    pub jwks_url: String,
}

/// An access token and an ID token of one sign-in.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub id: String,
}

impl CognitoPool {
    /// Creates a pool on the moto at `WHARF_TEST_SQS_ENDPOINT` (moto serves every AWS API on one
    /// port): users `admin` (in the `admin` group) and `reader` (in no group).
    pub async fn create() -> Self {
        let endpoint = std::env::var("WHARF_TEST_SQS_ENDPOINT")
            .unwrap_or_else(|_| panic!("WHARF_TEST_SQS_ENDPOINT (moto) is required by the integration tier"));
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let mut pool = Self {
            endpoint,
            pool_id: String::new(),
            client_id: String::new(),
            other_client_id: String::new(),
            issuer: String::new(),
            jwks_url: String::new(),
        };
        let created = pool.call("CreateUserPool", json!({"PoolName": crate::unique("wharf")})).await;
        pool.pool_id = created["UserPool"]["Id"].as_str().expect("pool id").to_owned();
        pool.issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{}", pool.pool_id);
        pool.jwks_url = format!("{}/{}/.well-known/jwks.json", pool.endpoint, pool.pool_id);
        pool.client_id = pool.create_client("services").await;
        pool.other_client_id = pool.create_client("elsewhere").await;
        pool.call("CreateGroup", json!({"UserPoolId": pool.pool_id, "GroupName": "admin"})).await;
        for user in ["admin", "reader"] {
            pool.call("AdminCreateUser", json!({"UserPoolId": pool.pool_id, "Username": user})).await;
            pool.call(
                "AdminSetUserPassword",
                json!({"UserPoolId": pool.pool_id, "Username": user, "Password": PASSWORD, "Permanent": true}),
            )
            .await;
        }
        pool.call(
            "AdminAddUserToGroup",
            json!({"UserPoolId": pool.pool_id, "Username": "admin", "GroupName": "admin"}),
        )
        .await;
        pool
    }

    async fn create_client(&self, name: &str) -> String {
        let client = self
            .call(
                "CreateUserPoolClient",
                json!({"UserPoolId": self.pool_id, "ClientName": name, "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]}),
            )
            .await;
        client["UserPoolClient"]["ClientId"].as_str().expect("client id").to_owned()
    }

    /// Signs `user` in through `client_id` (admin-initiate-auth) and returns the tokens.
    pub async fn sign_in(&self, user: &str, client_id: &str) -> Tokens {
        let auth = self
            .call(
                "AdminInitiateAuth",
                json!({"UserPoolId": self.pool_id, "ClientId": client_id, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                       "AuthParameters": {"USERNAME": user, "PASSWORD": PASSWORD}}),
            )
            .await;
        let result = &auth["AuthenticationResult"];
        Tokens {
            access: result["AccessToken"].as_str().expect("access token").to_owned(),
            id: result["IdToken"].as_str().expect("id token").to_owned(),
        }
    }

    async fn call(&self, action: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("AWSCognitoIdentityProviderService.{action}"))
            // moto routes by the credential scope's service and region; it does not check signatures.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/cognito-idp/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|err| panic!("moto cognito-idp {action}: {err}"));
        let status = response.status();
        let text = response.text().await.expect("moto answer");
        assert!(status.is_success(), "moto cognito-idp {action}: {status} {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("moto JSON") }
    }
}

/// A JWT issuer of the test's own: an RSA key made by `openssl`, its JWKS served on an ephemeral
/// port (requests counted), and tokens with whatever claims a test needs.
#[derive(Debug)]
pub struct TestIssuer {
    pem: Vec<u8>,
    /// The key as a JWK (without `kid`; [`Self::publish`] names it).
    public_jwk: Value,
    jwks: Arc<std::sync::Mutex<Value>>,
    served: Arc<AtomicUsize>,
    /// `http://127.0.0.1:<port>/jwks.json`.
    pub jwks_url: String,
}

impl TestIssuer {
    /// A fresh 2048-bit RSA key, its JWKS publishing it as `kid` (nothing when `kid` is `None`).
    pub async fn start(kid: Option<&str>) -> Self {
        let dir = crate::TempDir::new("issuer");
        let key = dir.path().join("key.pem");
        let status = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl genrsa");
        let pem = std::fs::read(&key).expect("key written");
        let modulus = std::process::Command::new("openssl")
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&key)
            .output()
            .expect("openssl runs");
        let modulus = String::from_utf8(modulus.stdout).expect("hex");
        let hex = modulus.trim().trim_start_matches("Modulus=");
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
        let public_jwk = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "e": "AQAB", "n": base64url(&bytes)});

        let jwks = Arc::new(std::sync::Mutex::new(json!({"keys": []})));
        let served = Arc::new(AtomicUsize::new(0));
        let (route_jwks, route_served) = (jwks.clone(), served.clone());
        let route = warp::path!("jwks.json").map(move || {
            route_served.fetch_add(1, Ordering::SeqCst);
            warp::reply::json(&*route_jwks.lock().expect("jwks lock"))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(warp::serve(route).incoming(listener).run());
        let issuer = Self { pem, public_jwk, jwks, served, jwks_url: format!("http://{addr}/jwks.json") };
        if let Some(kid) = kid {
            issuer.publish(&[kid]);
        }
        issuer
    }

    /// Publishes this key under each of `kids` (replacing what was published).
    pub fn publish(&self, kids: &[&str]) {
        let keys: Vec<Value> = kids
            .iter()
            .map(|kid| {
                let mut jwk = self.public_jwk.clone();
                jwk["kid"] = json!(kid);
                jwk
            })
            .collect();
        *self.jwks.lock().expect("jwks lock") = json!({ "keys": keys });
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// An RS256 token with `claims`, naming `kid`.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&self.pem).expect("RSA PEM");
        jsonwebtoken::encode(&header, claims, &key).expect("signed")
    }
}

/// Seconds since the epoch, for `exp`, `nbf` and `iat`.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Base64url without padding (JWT and JWK encoding).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
