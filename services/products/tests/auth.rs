//! Authentication and authorisation (docs/contract.md, "Authentication and authorisation"),
//! black-box: products with `AUTH_MODE=jwt`. Tokens come from an issuer of the test's own (any
//! claim, any key: expiry, issuer, groups, key rotation) and, in the integration tier, from
//! moto's Cognito — real RS256 tokens of users in and out of the admin group.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{TestServer, problem};
use wharf_testkit::cognito::{TestIssuer, base64url, now};

const ISSUER: &str = "https://issuer.wharf.test";
const AUDIENCE: &str = "wharf-test-client";

async fn with_issuer(issuer: &TestIssuer) -> TestServer {
    TestServer::start_with(&[
        ("AUTH_MODE", "jwt"),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("AUTH_JWKS_URL", issuer.jwks_url.as_str()),
        ("CHAOS_ENABLED", "true"),
    ])
    .await
}

fn claims(groups: &[&str]) -> Value {
    json!({"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": now() + 600, "iat": now(), "cognito:groups": groups})
}

async fn create(server: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut request =
        server.client.post(server.url("/api/products")).json(&json!({"name": "Guarded", "price": 1, "stock": 1}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Asserts a 401 whose challenge carries `error` (or none, for a missing token).
async fn unauthorized(response: reqwest::Response, error: Option<&str>) -> Value {
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    match error {
        Some(error) => assert!(challenge.contains(&format!(r#"error="{error}""#)), "{challenge}"),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
    problem(response, 401).await
}

#[tokio::test]
async fn reads_are_public_writes_need_the_admin_group() {
    let issuer = TestIssuer::start(Some("k1")).await;
    let server = with_issuer(&issuer).await;
    assert_eq!(server.get("/api/products").await.status(), 200, "the catalogue is public");
    for path in ["/health", "/health/ready", "/openapi.json", "/products/health", "/metrics"] {
        assert_eq!(server.get(path).await.status(), 200, "{path} is public");
    }
    unauthorized(create(&server, None).await, None).await;
    let reader = issuer.sign("k1", &claims(&[]));
    let body = problem(create(&server, Some(&reader)).await, 403).await;
    assert_eq!(body["type"], "urn:wharf:problem:forbidden");
    let admin = issuer.sign("k1", &claims(&["admin"]));
    let created = create(&server, Some(&admin)).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let item = server.url(&format!("/api/products/{id}"));
    assert_eq!(server.client.get(&item).send().await.unwrap().status(), 200);
    problem(server.client.delete(&item).bearer_auth(&reader).send().await.unwrap(), 403).await;
    unauthorized(server.client.put(&item).json(&json!({})).send().await.unwrap(), None).await;
    assert_eq!(server.client.delete(&item).bearer_auth(&admin).send().await.unwrap().status(), 204);

    // `groups` and `roles` claims count like `cognito:groups`.
    for claim in ["groups", "roles"] {
        let mut c = claims(&[]);
        c[claim] = json!(["admin"]);
        assert_eq!(create(&server, Some(&issuer.sign("k1", &c))).await.status(), 201, "{claim}");
    }
    // Everything under /admin needs the group, documented or not.
    problem(server.client.get(server.url("/admin/chaos/actors")).bearer_auth(&reader).send().await.unwrap(), 403).await;
    unauthorized(server.get("/admin/chaos/actors").await, None).await;
    let actors = server.client.get(server.url("/admin/chaos/actors")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(actors.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_401_with_the_reason() {
    let issuer = TestIssuer::start(Some("k1")).await;
    let server = with_issuer(&issuer).await;
    let valid = claims(&["admin"]);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = valid.clone();
        change(&mut c);
        issuer.sign("k1", &c)
    };
    let cases = [
        ("expired", with(&|c| c["exp"] = json!(now() - 120))),
        ("not yet valid", with(&|c| c["nbf"] = json!(now() + 600))),
        ("another issuer", with(&|c| c["iss"] = json!("https://evil.test"))),
        ("another audience", with(&|c| c["aud"] = json!("someone-else"))),
        ("no audience", with(&|c| drop(c.as_object_mut().unwrap().remove("aud")))),
        ("no expiry", with(&|c| drop(c.as_object_mut().unwrap().remove("exp")))),
        ("refresh token use", with(&|c| c["token_use"] = json!("refresh"))),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in cases {
        let body = unauthorized(create(&server, Some(&token)).await, Some("invalid_token")).await;
        assert!(body["detail"].as_str().unwrap().starts_with("The bearer token was refused"), "{what}: {body}");
    }
    // Within the leeway (30 s) a just-expired token still passes.
    assert_eq!(create(&server, Some(&with(&|c| c["exp"] = json!(now() - 5)))).await.status(), 201);

    // alg none: the payload of a valid token, no signature.
    let good = issuer.sign("k1", &valid);
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("{}.{payload}.", base64url(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#));
    unauthorized(create(&server, Some(&none)).await, Some("invalid_token")).await;
    // HS256 with the public key as secret (algorithm confusion).
    let hs = format!("{}.{payload}.{}", base64url(br#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#), base64url(b"sig"));
    unauthorized(create(&server, Some(&hs)).await, Some("invalid_token")).await;
    // A tampered payload.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut forged = valid.clone();
    forged["sub"] = json!("someone-else");
    parts[1] = base64url(forged.to_string().as_bytes());
    unauthorized(create(&server, Some(&parts.join("."))).await, Some("invalid_token")).await;
    // A foreign key under the same kid.
    let foreign = TestIssuer::start(None).await;
    unauthorized(create(&server, Some(&foreign.sign("k1", &valid))).await, Some("invalid_token")).await;
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_keys_once_per_interval() {
    let issuer = TestIssuer::start(Some("k1")).await;
    let server = with_issuer(&issuer).await;
    assert_eq!(issuer.fetches(), 1, "fetched once at start-up");
    let admin = claims(&["admin"]);
    for kid in ["unknown-1", "unknown-2", "unknown-3"] {
        unauthorized(create(&server, Some(&issuer.sign(kid, &admin))).await, Some("invalid_token")).await;
    }
    assert_eq!(issuer.fetches(), 2, "a flood of unknown kids costs one refresh per interval");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("wharf_auth_jwks_fetches_total 2"), "{metrics}");
    server.stop().await;

    // A rotated key is picked up by that one refresh.
    let issuer = TestIssuer::start(Some("old")).await;
    let server = with_issuer(&issuer).await;
    issuer.publish(&["old", "new"]);
    assert_eq!(create(&server, Some(&issuer.sign("new", &admin))).await.status(), 201);
    assert_eq!(issuer.fetches(), 2);
    server.stop().await;
}

#[tokio::test]
async fn start_up_fails_when_the_jwks_cannot_be_fetched() {
    let mut env = wharf_runtime::Env::from_pairs([
        ("PORT", "0"),
        ("AUTH_MODE", "jwt"),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("AUTH_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
    ]);
    let dir = wharf_testkit::TempDir::new("auth");
    env.set_default("DATABASE_URL", dir.sqlite_url("products.db"));
    let config = products::ProductsConfig::from_env(&mut env);
    env.finish().unwrap();
    let err = products::start(config).await.expect_err("start-up fails");
    let text = wharf_runtime::error_chain(&err);
    assert!(text.contains("http://127.0.0.1:9/jwks.json") && text.contains("AUTH_JWKS_URL"), "{text}");
}

#[tokio::test]
async fn openapi_declares_the_bearer_scheme_and_401_403() {
    let issuer = TestIssuer::start(Some("k1")).await;
    let server = with_issuer(&issuer).await;
    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    );
    let create = &doc["paths"]["/api/products"]["post"];
    assert_eq!(create["security"], json!([{"bearer": ["admin"]}]));
    for status in ["401", "403"] {
        assert!(create["responses"][status].is_object(), "{status}: {create}");
    }
    for status in ["400", "408", "413", "415", "429"] {
        assert!(create["responses"][status].is_object(), "{status} is documented: {create}");
    }
    assert!(doc["paths"]["/api/products/{id}"]["delete"]["responses"]["400"].is_object(), "a bad id is documented");
    let list = &doc["paths"]["/api/products"]["get"];
    assert!(list.get("security").is_none() && list["responses"].get("401").is_none(), "{list}");
    server.stop().await;
}

// A document describes the service that serves it: without authentication nothing needs a token.
#[tokio::test]
async fn without_auth_openapi_declares_no_security() {
    let server = TestServer::start().await;
    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["components"].get("securitySchemes").is_none(), "{}", doc["components"]);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation.get("security").is_none(), "{method} {path} declares security");
            for status in ["401", "403"] {
                assert!(operation["responses"].get(status).is_none(), "{method} {path} documents {status}");
            }
        }
    }
    server.stop().await;
}

#[cfg(feature = "integration")]
mod cognito {
    use super::*;
    use wharf_testkit::cognito::CognitoPool;

    async fn with_pool(pool: &CognitoPool) -> TestServer {
        TestServer::start_with(&[
            ("AUTH_MODE", "jwt"),
            ("AUTH_ISSUER", pool.issuer.as_str()),
            ("AUTH_AUDIENCE", pool.client_id.as_str()),
            ("AUTH_JWKS_URL", pool.jwks_url.as_str()),
        ])
        .await
    }

    #[tokio::test]
    async fn cognito_tokens_of_admins_and_readers() {
        let pool = CognitoPool::create().await;
        let server = with_pool(&pool).await;
        let admin = pool.sign_in("admin", &pool.client_id).await;
        let reader = pool.sign_in("reader", &pool.client_id).await;
        // An access token (client_id) and an ID token (aud) of an admin both pass.
        assert_eq!(create(&server, Some(&admin.access)).await.status(), 201);
        assert_eq!(create(&server, Some(&admin.id)).await.status(), 201);
        problem(create(&server, Some(&reader.access)).await, 403).await;
        problem(create(&server, Some(&reader.id)).await, 403).await;
        unauthorized(create(&server, None).await, None).await;
        assert_eq!(server.get("/api/products").await.status(), 200);

        // Another app client of the same pool.
        let elsewhere = pool.sign_in("admin", &pool.other_client_id).await;
        unauthorized(create(&server, Some(&elsewhere.access)).await, Some("invalid_token")).await;
        unauthorized(create(&server, Some(&elsewhere.id)).await, Some("invalid_token")).await;

        // A tampered signature.
        let (unsigned, signature) = admin.access.rsplit_once('.').unwrap();
        let mut bytes = signature.as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{unsigned}.{}", String::from_utf8(bytes).unwrap());
        unauthorized(create(&server, Some(&tampered)).await, Some("invalid_token")).await;

        // alg none over Cognito's own claims.
        let payload = admin.access.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", base64url(br#"{"alg":"none","kid":"dummy"}"#));
        unauthorized(create(&server, Some(&none)).await, Some("invalid_token")).await;

        // A foreign key under moto's kid, and a token for another pool.
        let foreign = TestIssuer::start(None).await;
        let claims = json!({"iss": pool.issuer, "sub": "x", "client_id": pool.client_id, "token_use": "access",
                            "exp": now() + 600, "cognito:groups": ["admin"]});
        unauthorized(create(&server, Some(&foreign.sign("dummy", &claims))).await, Some("invalid_token")).await;
        let other_pool = CognitoPool::create().await;
        let stranger = other_pool.sign_in("admin", &other_pool.client_id).await;
        unauthorized(create(&server, Some(&stranger.access)).await, Some("invalid_token")).await;
        server.stop().await;
    }
}
