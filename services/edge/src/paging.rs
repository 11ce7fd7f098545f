//! `?limit=&offset=` for every list endpoint.

use crate::problem::{FieldErrors, Problem};

/// The largest page a client may ask for.
pub const MAX_LIMIT: i64 = 1000;
/// The page size when a client does not say.
pub const DEFAULT_LIMIT: i64 = 100;

/// A validated page request; as `params(Page)`, the query parameters every list operation
/// documents, with the bounds [`Page::from_query`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1–1000 (default 100).
    #[param(required = false, minimum = 1, maximum = 1000, default = 100)]
    pub limit: i64,
    /// Items to skip, ≥ 0 (default 0).
    #[param(required = false, minimum = 0, default = 0)]
    pub offset: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self { limit: DEFAULT_LIMIT, offset: 0 }
    }
}

impl Page {
    /// Reads `limit` and `offset` from query pairs; any other pair is left to the caller.
    /// A value that is not a number, negative, or a limit above [`MAX_LIMIT`] is a 400.
    pub fn from_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Problem> {
        let mut page = Self::default();
        let mut errors = FieldErrors::new();
        for (key, value) in pairs {
            match key {
                "limit" => match value.parse::<i64>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => page.limit = n,
                    _ => errors.add("limit", format!("must be an integer from 1 to {MAX_LIMIT}")),
                },
                "offset" => match value.parse::<i64>() {
                    Ok(n) if n >= 0 => page.offset = n,
                    _ => errors.add("offset", "must be an integer of 0 or more"),
                },
                _ => {}
            }
        }
        errors.into_result(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bounds_and_errors() {
        assert_eq!(Page::from_query([]).unwrap(), Page { limit: 100, offset: 0 });
        assert_eq!(Page::from_query([("limit", "1000"), ("offset", "5")]).unwrap(), Page { limit: 1000, offset: 5 });
        for (k, v) in
            [("limit", "1001"), ("limit", "0"), ("limit", "-1"), ("limit", "ten"), ("offset", "-1"), ("offset", "x")]
        {
            let problem = Page::from_query([(k, v)]).unwrap_err();
            assert_eq!(problem.status, 400);
            assert!(problem.errors.unwrap().contains_key(k));
        }
    }

    #[test]
    fn the_documented_bounds_are_the_enforced_ones() {
        use utoipa::IntoParams;
        let params = serde_json::to_value(Page::into_params(|| None)).unwrap();
        let schema = |name: &str| {
            let param = params.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
            assert_eq!(param["in"], "query");
            assert_eq!(param["required"], false, "{param}");
            param["schema"].clone()
        };
        let limit = schema("limit");
        assert_eq!((limit["minimum"].as_i64(), limit["maximum"].as_i64()), (Some(1), Some(MAX_LIMIT)), "{limit}");
        assert_eq!(limit["default"].as_i64(), Some(DEFAULT_LIMIT));
        assert_eq!(schema("offset")["minimum"].as_i64(), Some(0));
        assert_eq!(limit["type"], "integer");
    }
}
