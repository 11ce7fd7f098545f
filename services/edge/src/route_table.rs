//! Which methods each path of a service answers: the source of `405` + `Allow` and of `HEAD`.
//!
//! warp tries every route in turn and only says "some route had this path but not this method",
//! without naming the methods; worse, `GET /api/notifications/send` matches the templated route
//! `GET /api/notifications/{id}` and would be answered as a bad id. The table is built from the
//! service's OpenAPI document (plus the edge's own undocumented pages), matched before warp sees
//! the request, with OpenAPI's rule that a literal segment beats a template: so `/send` is the
//! `POST`-only path it is documented as, and a documented path answers exactly its documented
//! methods.

use http::Method;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::path::Operation;

use crate::auth::{ADMIN_ROLE, Access, BEARER_SCHEME};

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Parameter,
    /// Any number of segments, including none (a static file tree such as `/swagger/…`).
    Rest,
}

#[derive(Debug, Clone)]
struct Template {
    segments: Vec<Segment>,
    /// Each method with what its caller needs.
    methods: Vec<(Method, Access)>,
}

/// Every path template of a service with its methods.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    templates: Vec<Template>,
}

impl RouteTable {
    /// The paths and methods of `doc`.
    pub fn from_doc(doc: &OpenApiDoc) -> Self {
        let mut table = Self::default();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
                (Method::OPTIONS, &item.options),
                (Method::HEAD, &item.head),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    table.add_with_access(path, &[method], access_of(operation));
                }
            }
        }
        table
    }

    /// Adds public `methods` to `template` (`/a/{id}/b`; a final `/*` matches any rest of the path).
    pub fn add(&mut self, template: &str, methods: &[Method]) {
        self.add_with_access(template, methods, Access::Public);
    }

    /// Adds `methods` to `template`, each needing `access`.
    pub fn add_with_access(&mut self, template: &str, methods: &[Method], access: Access) {
        let segments: Vec<Segment> = split(template)
            .map(|segment| match segment {
                "*" => Segment::Rest,
                s if s.starts_with('{') && s.ends_with('}') => Segment::Parameter,
                s => Segment::Literal(s.to_owned()),
            })
            .collect();
        match self.templates.iter_mut().find(|t| t.segments == segments) {
            Some(existing) => {
                for method in methods {
                    if !existing.methods.iter().any(|(m, _)| m == method) {
                        existing.methods.push((method.clone(), access));
                    }
                }
            }
            None => self
                .templates
                .push(Template { segments, methods: methods.iter().map(|m| (m.clone(), access)).collect() }),
        }
    }

    /// What a `method` request to `path` needs: what the document says, and the admin group for
    /// anything under `/admin` (HEAD needs what GET needs).
    pub fn access(&self, method: &Method, path: &str) -> Access {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        let documented = self
            .best(path)
            .and_then(|t| t.methods.iter().find(|(m, _)| m == method).map(|(_, access)| *access))
            .unwrap_or(Access::Public);
        let under_admin = split(path).next() == Some("admin");
        if under_admin { Access::Admin } else { documented }
    }

    fn best(&self, path: &str) -> Option<&Template> {
        let segments: Vec<&str> = split(path).collect();
        self.templates
            .iter()
            .filter_map(|t| rank(&t.segments, &segments).map(|rank| (rank, t)))
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, t)| t)
    }

    /// The methods `path` answers, or `None` when no template matches it (a 404 is warp's to give).
    /// `HEAD` is included wherever `GET` is.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let mut methods: Vec<Method> = self.best(path)?.methods.iter().map(|(m, _)| m.clone()).collect();
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            methods.push(Method::HEAD);
        }
        Some(methods)
    }
}

/// What an operation's `security` asks for: public without a `bearer` requirement, the admin
/// group when the requirement names the `admin` role, a valid token otherwise.
fn access_of(operation: &Operation) -> Access {
    let Some(requirements) = &operation.security else { return Access::Public };
    // A requirement is a map from scheme name to roles; read through its serialised form, which
    // is what the document's readers see too.
    let mut access = Access::Public;
    for requirement in requirements {
        let Ok(serde_json::Value::Object(schemes)) = serde_json::to_value(requirement) else { continue };
        if let Some(roles) = schemes.get(BEARER_SCHEME) {
            let admin = roles.as_array().is_some_and(|r| r.iter().any(|role| role == ADMIN_ROLE));
            access = access.max(if admin { Access::Admin } else { Access::User });
        }
    }
    access
}

/// The `Allow` header's value for `methods`.
pub fn allow_header(methods: &[Method]) -> String {
    methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
}

/// A path's segments; a trailing slash is ignored, as warp's routing ignores it.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/').filter(|s| !s.is_empty())
}

/// How specifically `template` matches `path`, or `None` when it does not: literal segments
/// outrank parameters position by position, and both outrank a rest match.
fn rank(template: &[Segment], path: &[&str]) -> Option<Vec<u8>> {
    let mut rank = Vec::with_capacity(template.len());
    for (index, segment) in template.iter().enumerate() {
        match segment {
            Segment::Rest => {
                rank.push(0);
                return Some(rank);
            }
            Segment::Literal(literal) => {
                if path.get(index) != Some(&literal.as_str()) {
                    return None;
                }
                rank.push(2);
            }
            Segment::Parameter => {
                path.get(index)?;
                rank.push(1);
            }
        }
    }
    (template.len() == path.len()).then_some(rank)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let mut table = RouteTable::default();
        table.add("/api/notifications", &[Method::GET]);
        table.add("/api/notifications/{id}", &[Method::GET]);
        table.add("/api/notifications/send", &[Method::POST]);
        table.add("/api/products/{id}", &[Method::GET, Method::PUT]);
        table.add("/api/products/{id}", &[Method::DELETE]);
        table.add("/swagger/*", &[Method::GET]);
        table
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        assert_eq!(table().allowed("/api/notifications/send").unwrap(), [Method::POST]);
        assert_eq!(table().allowed("/api/notifications/7").unwrap(), [Method::GET, Method::HEAD]);
        assert_eq!(table().allowed("/api/notifications/").unwrap(), [Method::GET, Method::HEAD]);
    }

    #[test]
    fn methods_of_one_template_accumulate_and_head_follows_get() {
        let allowed = table().allowed("/api/products/1").unwrap();
        assert_eq!(allow_header(&allowed), "GET, PUT, DELETE, HEAD");
    }

    #[test]
    fn unknown_paths_and_rest_templates() {
        assert!(table().allowed("/api/products").is_none());
        assert!(table().allowed("/api/products/1/extra").is_none());
        assert!(table().allowed("/nope").is_none());
        assert!(table().allowed("/swagger").is_some());
        assert!(table().allowed("/swagger/a/b.js").is_some());
    }
}
