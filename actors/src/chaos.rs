//! Chaos hooks: fault injection by actor name.
//!
//! Used by the crate's tests, the `wharf chaos` scenarios and an operator admin
//! endpoint to prove that supervision works on a live process. Killing is the
//! harshest fault ractor offers (the actor's current handler is cancelled at its
//! next await point and `post_stop` does not run), so it exercises the same path
//! as a crash. Panics are injected by the actors under test themselves.

use ractor::registry;

/// Why a chaos operation did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChaosError {
    /// No actor is registered under that name (it may be between restarts).
    #[error("no actor named {0} is running")]
    NotFound(String),
}

/// Kills the actor registered as `name`; its supervisor sees it terminate with
/// reason `"killed"` and applies its restart policy.
pub fn kill(name: &str) -> Result<(), ChaosError> {
    let actor = registry::where_is(name).ok_or_else(|| ChaosError::NotFound(name.to_owned()))?;
    tracing::warn!(actor = %name, "chaos: killing actor");
    actor.kill();
    Ok(())
}

/// Names of all running actors whose registry name starts with `prefix`, sorted;
/// lets an operator see what there is to kill.
pub fn running(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = registry::registered().into_iter().filter(|name| name.starts_with(prefix)).collect();
    names.sort();
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn killing_an_unknown_actor_is_not_found() {
        assert_eq!(kill("chaos-test/nobody"), Err(ChaosError::NotFound("chaos-test/nobody".to_owned())));
    }
}
