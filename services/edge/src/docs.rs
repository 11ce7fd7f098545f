//! `/openapi.json` and `/swagger`: the service's OpenAPI 3.1 document and Swagger UI.
//!
//! The UI's files are compiled into the binary (utoipa-swagger-ui's `vendored` feature), so the
//! page works on a laptop with no network. They are compiled in gzipped (its `gzip` feature: 1.1
//! MiB instead of 4.1 in every binary) and served so, with `Content-Encoding: gzip`, to every
//! client that asks for gzip (every browser); any other client gets them decompressed.

use std::sync::Arc;

use http::{HeaderValue, StatusCode, header};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as OpenApiDoc, Ref, RefOr, ResponseBuilder};
use utoipa_swagger_ui::Config;
use warp::Filter;
use warp::path::{FullPath, Tail};
use warp::reply::Response;

use crate::problem::Problem;
use crate::request::route;

/// The operational endpoints every service shares, merged into each service's document.
#[derive(OpenApi)]
#[openapi(
    paths(crate::health::health, crate::health::live, crate::health::ready, crate::metrics::metrics),
    components(schemas(Problem, crate::health::HealthReport, crate::health::CheckOutcome, crate::health::CheckStatus)),
    tags((name = "health", description = "Liveness, readiness and summary health"),
         (name = "operations", description = "Metrics for Prometheus"))
)]
struct EdgeDoc;

/// The service's document with the shared endpoints and schemas added, 429 on every `/api/*`
/// operation, and the statuses the edge gives before a handler runs (400 for a bad path id; 400,
/// 408, 413 and 415 for a body). When the edge `authenticates` (`AUTH_MODE=jwt`) it declares the
/// bearer scheme and 401/403 on every operation whose `security` asks for a token; otherwise no
/// operation asks for one, as none needs one.
pub fn merged(mut service: OpenApiDoc, authenticates: bool) -> OpenApiDoc {
    service.merge(EdgeDoc::openapi());
    if authenticates {
        let components = service.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            crate::auth::BEARER_SCHEME,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
    for (path, item) in service.paths.paths.iter_mut() {
        // Rate limits (when on) apply to every `/api/*` operation.
        let limited = path.starts_with("/api/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.options,
            &mut item.head,
        ];
        let has_path_id = path.contains('{');
        for operation in operations.into_iter().flatten() {
            if !authenticates {
                operation.security = None;
            }
            // What the edge itself answers before a handler runs: a bad id (any `{…}` segment is
            // parsed as one), and for a body its syntax, time, size and media type.
            let mut edge_answers = Vec::new();
            if has_path_id {
                edge_answers
                    .push(("400", "Invalid request: a path id that is not a canonical integer, or invalid fields"));
            }
            if operation.request_body.is_some() {
                edge_answers.extend([
                    ("400", "Malformed JSON, a repeated key, a control character or invalid fields"),
                    ("408", "The body did not arrive within HTTP_BODY_TIMEOUT_SECS"),
                    ("413", "The body is larger than BODY_LIMIT_BYTES"),
                    ("415", "The body is not UTF-8 application/json"),
                ]);
            }
            for (status, description) in edge_answers {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
                            .build(),
                    )
                });
            }
            if limited {
                operation.responses.responses.entry("429".to_owned()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("Past this client's rate limit (`Retry-After`, `RateLimit-*`)")
                            .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
                            .build(),
                    )
                });
            }
            if operation.security.as_ref().is_some_and(|requirements| !requirements.is_empty()) {
                let responses = &mut operation.responses.responses;
                let problem = |description: &str| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
                            .build(),
                    )
                };
                responses.entry("401".to_owned()).or_insert_with(|| {
                    problem("No bearer token, or one that is invalid, expired or for another client (`WWW-Authenticate` says which)")
                });
                responses
                    .entry("403".to_owned())
                    .or_insert_with(|| problem("A valid token without the group this operation needs"));
            }
        }
    }
    service
}

/// `GET /openapi.json`, `GET /swagger` (redirects to `/swagger/`) and `GET /swagger/{file}`.
pub(crate) fn routes(doc: OpenApiDoc) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let mut served = serde_json::to_value(&doc).unwrap_or_default();
    crate::text_rules::state(&mut served);
    let json: Arc<[u8]> = serde_json::to_vec(&served).unwrap_or_default().into();
    let openapi = warp::path!("openapi.json").and(warp::get()).and(route("/openapi.json")).map(move || {
        let mut response = Response::new(json.to_vec().into());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    });

    let config = Arc::new(Config::from("/openapi.json"));
    // warp ignores a trailing slash when matching, so `/swagger` and `/swagger/` are told apart
    // by the full path: the UI's relative links only work under `/swagger/`.
    let swagger = warp::path("swagger")
        .and(warp::path::tail())
        .and(warp::path::full())
        .and(warp::get())
        .and(route("/swagger"))
        .and(warp::header::optional::<String>("accept-encoding"))
        .and_then(move |tail: Tail, full: FullPath, accept_encoding: Option<String>| {
            let config = config.clone();
            async move {
                if tail.as_str().is_empty() && !full.as_str().ends_with('/') {
                    let mut response = crate::reply::empty(StatusCode::MOVED_PERMANENTLY);
                    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/swagger/"));
                    return Ok(response);
                }
                match utoipa_swagger_ui::serve(tail.as_str(), config) {
                    Ok(Some(file)) => {
                        let gzip = file.gzpipped && accepts_gzip(accept_encoding.as_deref());
                        let body = if file.gzpipped && !gzip { gunzip(&file.bytes) } else { Ok(file.bytes.into_owned()) };
                        let body = match body {
                            Ok(body) => body,
                            Err(err) => {
                                tracing::error!(error = %err, file = tail.as_str(), "swagger ui file failed to decompress");
                                return Ok(Problem::internal().into_response());
                            }
                        };
                        let mut response = Response::new(body.into());
                        let headers = response.headers_mut();
                        if let Ok(value) = HeaderValue::from_str(&file.content_type) {
                            headers.insert(header::CONTENT_TYPE, value);
                        }
                        if file.gzpipped {
                            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
                        }
                        if gzip {
                            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                        }
                        Ok(response)
                    }
                    Ok(None) => Err(warp::reject::not_found()),
                    Err(err) => {
                        tracing::error!(error = %err, "swagger ui file failed");
                        Ok(Problem::internal().into_response())
                    }
                }
            }
        });
    openapi.or(swagger).unify()
}

/// Whether the client asked for gzip: its `Accept-Encoding` names `gzip` (or `x-gzip`), or else
/// `*`, with a non-zero weight (RFC 9110 §12.5.3). Without the header, RFC 9110 would allow any
/// coding, but a plain `curl` sends none and should see the file, not gzip.
fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else { return false };
    let mut wildcard = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|param| param.trim().strip_prefix("q=").or_else(|| param.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => return weight > 0.0,
            "*" => wildcard = Some(weight > 0.0),
            _ => {}
        }
    }
    wildcard.unwrap_or(false)
}

/// The original bytes of a gzipped file.
fn gunzip(gzipped: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut plain = Vec::with_capacity(gzipped.len() * 4);
    flate2::read::GzDecoder::new(gzipped).read_to_end(&mut plain)?;
    Ok(plain)
}
