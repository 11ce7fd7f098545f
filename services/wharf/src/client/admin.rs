//! Operator routes under one service's base URL (`/admin/chaos/*`, `/admin/dlq*`): mounted only
//! when a variable turns them on, so the router's own 404 is read as "off, and here is the switch"
//! rather than as a missing page.

use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use super::{ApiError, Client, Expect};

/// One family of operator routes on one service (one pod's, when given one).
#[derive(Debug, Clone)]
pub(super) struct AdminRoutes {
    client: Client,
    /// Without a trailing slash.
    base: String,
    /// `/admin/chaos`: what an error says is not mounted.
    routes: &'static str,
    /// Who must be restarted to mount them: `the service`, `notifications`.
    owner: &'static str,
    /// The variable that mounts them.
    switch: &'static str,
}

impl AdminRoutes {
    pub(super) fn new(
        client: Client,
        base: &str,
        routes: &'static str,
        owner: &'static str,
        switch: &'static str,
    ) -> Self {
        Self { client, base: base.trim_end_matches('/').to_owned(), routes, owner, switch }
    }

    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (which starts with the routes' prefix) on this service.
    pub(super) fn at(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.http().request(method, format!("{}{path}", self.base))
    }

    /// Sends `request`; any 2xx answer is read as `T` (the routes answer 200 or 202 depending on
    /// whether work was queued).
    pub(super) async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ApiError> {
        let answer = self
            .client
            .send(request, Expect::Success)
            .await
            .map_err(|err| err.unless_mounted(&self.base, self.routes, self.owner, self.switch))?;
        answer.json()
    }
}
