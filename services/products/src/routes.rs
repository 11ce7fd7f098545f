//! `/api/products`: the catalogue's HTTP API.
//!
//! Handlers parse the request into domain types once, call the store pool, and answer; every
//! failure is a [`Problem`], so the status codes of the contract are decided here and only here.

use std::convert::Infallible;

use serde_json::Value;
use utoipa::OpenApi;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use wharf_edge::reply::{answer, empty, json, path_id};
use wharf_edge::{Page, Problem, json_body, route};

use crate::catalogue::Catalogue;
use crate::domain::{NewProduct, Product, ProductInput};

/// The products API document (the edge adds its shared endpoints).
#[derive(OpenApi)]
#[openapi(
    info(title = "wharf products", description = "The product catalogue."),
    paths(list, get, create, update, delete),
    components(schemas(Product, ProductInput)),
    tags((name = "products", description = "The product catalogue"))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// List products, in ascending id order.
#[utoipa::path(get, path = "/api/products", tag = "products",
    params(Page),
    responses((status = 200, body = [Product]), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list(query: Vec<(String, String)>, catalogue: Catalogue) -> Result<Response, Infallible> {
    answer(
        async {
            let page = Page::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            Ok(json(StatusCode::OK, &catalogue.list(page).await?))
        }
        .await,
    )
}

/// One product.
#[utoipa::path(get, path = "/api/products/{id}", tag = "products",
    params(("id" = i64, Path, description = "The product's id")),
    responses((status = 200, body = Product), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get(id: String, catalogue: Catalogue) -> Result<Response, Infallible> {
    answer(async { Ok(json(StatusCode::OK, &catalogue.get(path_id(&id)?).await?)) }.await)
}

/// Add a product.
#[utoipa::path(post, path = "/api/products", security(("bearer" = ["admin"])), tag = "products", request_body = ProductInput,
    responses((status = 201, body = Product, headers(("Location" = String, description = "The new product's URL"))),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 413, body = Problem, content_type = "application/problem+json"),
              (status = 415, body = Problem, content_type = "application/problem+json")))]
async fn create(catalogue: Catalogue, body: Value) -> Result<Response, Infallible> {
    answer(
        async {
            let product = catalogue.create(NewProduct::parse(&body)?).await?;
            let mut response = json(StatusCode::CREATED, &product);
            if let Ok(location) = HeaderValue::from_str(&format!("/api/products/{}", product.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        .await,
    )
}

/// Replace a product's fields.
#[utoipa::path(put, path = "/api/products/{id}", security(("bearer" = ["admin"])), tag = "products", request_body = ProductInput,
    params(("id" = i64, Path, description = "The product's id")),
    responses((status = 200, body = Product), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn update(id: String, catalogue: Catalogue, body: Value) -> Result<Response, Infallible> {
    answer(
        async {
            let id = path_id(&id)?;
            let product = NewProduct::parse(&body)?;
            Ok(json(StatusCode::OK, &catalogue.update(id, product).await?))
        }
        .await,
    )
}

/// Remove a product.
#[utoipa::path(delete, path = "/api/products/{id}", security(("bearer" = ["admin"])), tag = "products",
    params(("id" = i64, Path, description = "The product's id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete(id: String, catalogue: Catalogue) -> Result<Response, Infallible> {
    answer(
        async {
            catalogue.delete(path_id(&id)?).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        .await,
    )
}

/// Every `/api/products` route. Path before method, so that a known path with the wrong method
/// is a 405 and an unknown path a 404.
pub fn routes(catalogue: Catalogue, body_limit: u64) -> BoxedFilter<(Response,)> {
    let catalogue = warp::any().map(move || catalogue.clone());
    let collection = warp::path!("api" / "products");
    let item = warp::path!("api" / "products" / String);

    let list = collection
        .and(warp::get())
        .and(route("/api/products"))
        .and(warp::query::<Vec<(String, String)>>())
        .and(catalogue.clone())
        .and_then(list);
    let create = collection
        .and(warp::post())
        .and(route("/api/products"))
        .and(catalogue.clone())
        .and(json_body(body_limit))
        .and_then(create);
    let get = item.and(warp::get()).and(route("/api/products/{id}")).and(catalogue.clone()).and_then(get);
    let update = item
        .and(warp::put())
        .and(route("/api/products/{id}"))
        .and(catalogue.clone())
        .and(json_body(body_limit))
        .and_then(update);
    let delete = item.and(warp::delete()).and(route("/api/products/{id}")).and(catalogue).and_then(delete);

    list.or(create).unify().or(get).unify().or(update).unify().or(delete).unify().boxed()
}
