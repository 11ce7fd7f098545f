//! The URLs of the public API: every `/api/…` path the CLI uses is spelt here, joined to where its
//! service answers.
//!
//! The base URLs are checked once, when the routes are made, so a mistyped `--orders` fails before
//! anything is sent rather than on the first order. [`Api`](super::Api) calls through these; the
//! load builds its hot-path URLs from them once per run.

use reqwest::Url;

use super::ApiError;
use crate::targets::{Service, Targets};

/// Where each endpoint of the public API is, for one deployment.
#[derive(Debug, Clone)]
pub struct Routes {
    targets: Targets,
}

impl Routes {
    /// The routes of the services at `targets`; an error names a base URL that is not one.
    pub fn new(targets: Targets) -> Result<Self, ApiError> {
        let routes = Self { targets };
        for service in Service::ALL {
            routes.url(service, "")?;
        }
        Ok(routes)
    }

    /// Where the services answer.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// `path` (which starts with `/`, or is empty) on `service`'s base URL.
    fn url(&self, service: Service, path: &str) -> Result<Url, ApiError> {
        let text = format!("{}{path}", self.targets.base(service));
        Url::parse(&text).map_err(|err| ApiError::Url { url: text, reason: err.to_string() })
    }

    /// `/health`: the service and its dependencies, not routed by a path-routing ingress.
    pub fn health(&self, service: Service) -> Result<Url, ApiError> {
        self.url(service, "/health")
    }

    /// `/api/<service>`: a service's collection (list with GET, create with POST).
    pub fn collection(&self, service: Service) -> Result<Url, ApiError> {
        self.url(service, &format!("/api/{}", service.name()))
    }

    /// `/api/<service>?limit=N`: the first page of a collection.
    pub fn page(&self, service: Service, limit: usize) -> Result<Url, ApiError> {
        let mut url = self.collection(service)?;
        url.query_pairs_mut().append_pair("limit", &limit.to_string());
        Ok(url)
    }

    /// `/api/products/{id}`.
    pub fn product(&self, id: i64) -> Result<Url, ApiError> {
        self.url(Service::Products, &format!("/api/products/{id}"))
    }

    /// `/api/orders/{id}`.
    pub fn order(&self, id: i64) -> Result<Url, ApiError> {
        self.url(Service::Orders, &format!("/api/orders/{id}"))
    }

    /// `/api/notifications/{id}`.
    pub fn notification(&self, id: i64) -> Result<Url, ApiError> {
        self.url(Service::Notifications, &format!("/api/notifications/{id}"))
    }

    /// `/api/notifications?recipient=…&limit=…&offset=…`, each parameter only when given; the
    /// recipient is encoded (`+` in an address would otherwise read as a space).
    pub fn notifications_of(
        &self,
        recipient: &str,
        limit: Option<usize>,
        offset: Option<usize>,
    ) -> Result<Url, ApiError> {
        let mut url = self.collection(Service::Notifications)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("recipient", recipient);
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
            if let Some(offset) = offset {
                query.append_pair("offset", &offset.to_string());
            }
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn routes(products: &str, orders: &str, notifications: &str) -> Result<Routes, ApiError> {
        let targets = Targets {
            products: products.into(),
            orders: orders.into(),
            notifications: notifications.into(),
            path_routed: false,
        };
        Routes::new(targets)
    }

    #[test]
    fn each_endpoint_goes_to_its_service_under_any_base_path() {
        let routes = routes("http://p:1", "https://lb.example.com/wharf", "http://n:3").unwrap();
        assert_eq!(routes.health(Service::Products).unwrap().as_str(), "http://p:1/health");
        assert_eq!(routes.collection(Service::Orders).unwrap().as_str(), "https://lb.example.com/wharf/api/orders");
        assert_eq!(routes.page(Service::Products, 20).unwrap().as_str(), "http://p:1/api/products?limit=20");
        assert_eq!(routes.product(5).unwrap().as_str(), "http://p:1/api/products/5");
        assert_eq!(routes.order(6).unwrap().as_str(), "https://lb.example.com/wharf/api/orders/6");
        assert_eq!(routes.notification(7).unwrap().as_str(), "http://n:3/api/notifications/7");
        assert_eq!(
            routes.notifications_of("smoke+ab@example.com", Some(1000), Some(40)).unwrap().as_str(),
            "http://n:3/api/notifications?recipient=smoke%2Bab%40example.com&limit=1000&offset=40"
        );
        assert_eq!(
            routes.notifications_of("a@b.test", None, None).unwrap().as_str(),
            "http://n:3/api/notifications?recipient=a%40b.test"
        );
    }

    #[test]
    fn a_base_url_that_is_not_one_is_refused_up_front() {
        let err = routes("http://p:1", "127.0.0.1:5001", "http://n:3").unwrap_err();
        assert!(err.to_string().starts_with("invalid URL 127.0.0.1:5001:"), "{err}");
    }
}
