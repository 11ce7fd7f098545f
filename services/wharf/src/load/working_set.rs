//! Before and after the load: the services the run needs are checked to answer, and the working
//! set of products — the ones product reads and orders use — is created (or, with
//! `--product-ids`, checked); when the run ends, the products it created are deleted.

use std::time::Duration;

use reqwest::StatusCode;

use super::mix::Operation;
use super::{LoadArgs, Session};
use crate::client::{ApiError, NewProduct};
use crate::duration;
use crate::targets::Service;

/// Stock given to the products a run creates: orders never run out during a run.
const WORKING_STOCK: i64 = 1_000_000;

/// The products the load uses.
#[derive(Debug)]
pub(super) struct WorkingSet {
    pub(super) ids: Vec<i64>,
    /// Whether this run created them (and so deletes them).
    pub(super) created: bool,
}

/// Checks the services the run needs answer, then creates (or checks) the working set.
pub(super) async fn set_up(session: &Session, args: &LoadArgs) -> Result<WorkingSet, String> {
    let places_orders = args.mix.weight(Operation::OrderCreate) > 0;
    let mut needed = Vec::new();
    if args.needs_products() {
        needed.push(Service::Products);
    }
    if places_orders {
        needed.push(Service::Orders);
    }
    if args.mix.weight(Operation::NotificationRead) > 0 || (places_orders && !args.notify_wait.is_zero()) {
        needed.push(Service::Notifications);
    }
    let probes = needed.iter().map(|&service| async move {
        let (name, base) = (service.name(), session.api.routes().targets().base(service));
        match session.api.probe(service).await {
            Ok(()) => Ok(()),
            Err(err @ ApiError::Unreachable { .. }) => Err(format!("cannot reach {name} at {base}: {}", err.cause())),
            Err(err) => Err(format!("{name} at {base}: {err}")),
        }
    });
    let failures: Vec<String> =
        futures_util::future::join_all(probes).await.into_iter().filter_map(Result::err).collect();
    if !failures.is_empty() {
        let mut message = failures.join("\n  ");
        if failures.iter().any(|failure| failure.starts_with("cannot reach")) {
            message.push_str("\n  (is wharf running? `wharf up` starts it; --products/--orders/--notifications or --base-url say where it is)");
        }
        return Err(message);
    }
    if !args.needs_products() {
        return Ok(WorkingSet { ids: Vec::new(), created: false });
    }

    if !args.product_ids.is_empty() {
        for &id in &args.product_ids {
            session.api.product(id).await.map_err(|err| format!("product {id} cannot be used: {err}"))?;
        }
        eprintln!("wharf load: run {}, working set: products {}", session.run_id, list_ids(&args.product_ids));
        return Ok(WorkingSet { ids: args.product_ids.clone(), created: false });
    }

    let mut ids = Vec::new();
    let mut failure = None;
    let numbers: Vec<u32> = (1..=args.products_count).collect();
    // A few at a time: quick for a large working set without flooding the service during set-up.
    for chunk in numbers.chunks(8) {
        let creations = chunk.iter().map(|number| async move {
            let name = format!("wharf load {} #{number}", session.run_id);
            let product = NewProduct::new(name, 1.0, WORKING_STOCK, "created by wharf load; deleted when the run ends");
            session.api.create_product(&product).await.map(|product| product.id)
        });
        for created in futures_util::future::join_all(creations).await {
            match created {
                Ok(id) => ids.push(id),
                Err(err) => failure = Some(err),
            }
        }
        if failure.is_some() {
            break;
        }
    }
    ids.sort_unstable();
    let working_set = WorkingSet { ids, created: true };
    if let Some(err) = failure {
        tidy_up(session, args, &working_set).await;
        return Err(format!("cannot create the working set of products: {err}"));
    }
    eprintln!(
        "wharf load: run {}, created products {} (recipient {})",
        session.run_id,
        list_ids(&working_set.ids),
        session.recipient
    );
    Ok(working_set)
}

/// `3, 4, 5` — or `3 … 102 (100)` for a long list.
pub(super) fn list_ids(ids: &[i64]) -> String {
    match ids {
        [] => "none".into(),
        [first, .., last] if ids.len() > 6 => format!("{first} … {last} ({})", ids.len()),
        _ => ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
    }
}

/// Deletes the products the run created (unless --keep); returns those it could not delete.
/// Never fails the run, and never hangs: each delete is bounded, all run at once.
pub(super) async fn tidy_up(session: &Session, args: &LoadArgs, working_set: &WorkingSet) -> Vec<i64> {
    if !working_set.created || args.keep || working_set.ids.is_empty() {
        return Vec::new();
    }
    let bound = args.timeout.min(Duration::from_secs(10));
    let deletions = working_set.ids.iter().map(|&id| async move {
        let outcome = match tokio::time::timeout(bound, session.api.delete_product(id)).await {
            Ok(Ok(())) => Ok(()),
            // Already gone, which is what tidying up wants.
            Ok(Err(err)) if err.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {}", duration::human(bound))),
        };
        (id, outcome)
    });
    let mut not_deleted = Vec::new();
    for (id, outcome) in futures_util::future::join_all(deletions).await {
        if let Err(err) = outcome {
            eprintln!("wharf load: could not delete product {id}: {err}");
            not_deleted.push(id);
        }
    }
    not_deleted
}
