//! `wharf chaos`: break one running service on purpose, and put it right again.
//!
//! A thin client of the service's `/admin/chaos/*` routes (see `wharf_edge::chaos`), which exist
//! only when the service runs with `CHAOS_ENABLED=true`. Each subcommand is one order to one
//! service: kill an actor, add latency or errors to its API for a while, take it out of
//! readiness, or undo that. Faults end by themselves after `--for`, so a forgotten drill cannot
//! outlive its window.
//!
//! Exit codes: 0 done, 1 the service refused or could not be reached, 2 bad flags.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::client::{ArmedFaults, ChaosAdmin, ChaosState, Client, ClientOptions, FaultPlan};
use crate::duration;
use crate::targets::{AccessArgs, Service};

const EXAMPLES: &str = "\
Examples:
  wharf chaos status --service products
  wharf chaos kill --service orders orders/store/0
  wharf chaos latency --service orders --ms 300 --jitter-ms 100 --for 30s
  wharf chaos errors --service products --rate 0.3 --for 2m
  wharf chaos unready --service notifications --for 45s
  wharf chaos clear --service orders

The service must run with CHAOS_ENABLED=true (`CHAOS_ENABLED=true wharf up` enables all three).
Latency and errors apply to /api/* by default and never to /health*, /metrics or /admin/*.";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, subcommand_required = true, arg_required_else_help = true)]
pub struct ChaosArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Show the latency, errors and readiness override in force and how long each has left, the
    /// faults injected so far, and the actors that can be killed.
    #[command(after_help = "Example:\n  wharf chaos status --service orders")]
    Status(Target),
    /// Kill a supervised actor (its supervisor restarts it; kills beyond the restart budget
    /// escalate as a crash would).
    #[command(after_help = "Examples:\n  wharf chaos kill --service products products/store/0\n  \
                            wharf chaos kill --service orders --all-matching orders/store/")]
    Kill(KillArgs),
    /// Delay every API request by a fixed time, give or take some jitter, for a while. Replaces
    /// any latency or errors injected before.
    #[command(after_help = "Example:\n  wharf chaos latency --service orders --ms 300 --jitter-ms 100 --for 30s")]
    Latency(LatencyArgs),
    /// Answer a share of API requests with a server error instead of running them, for a while.
    /// Replaces any latency or errors injected before.
    #[command(after_help = "Example:\n  wharf chaos errors --service products --rate 0.3 --status 503 --for 2m")]
    Errors(ErrorsArgs),
    /// Make /health/ready answer 503 for a while, as a replica dropping out would; the service
    /// still serves and /health/live stays 200.
    #[command(after_help = "Example:\n  wharf chaos unready --service notifications --for 45s")]
    Unready(UnreadyArgs),
    /// End a forced unreadiness now.
    #[command(after_help = "Example:\n  wharf chaos ready --service notifications")]
    Ready(Target),
    /// End injected latency and errors and a forced unreadiness now (killed actors restart by
    /// themselves).
    #[command(after_help = "Example:\n  wharf chaos clear --service orders")]
    Clear(Target),
}

/// Which service to send the order to.
#[derive(Debug, Clone, Args)]
struct Target {
    /// The service to act on. Its URL is WHARF_PRODUCTS_URL, WHARF_ORDERS_URL or
    /// WHARF_NOTIFICATIONS_URL when set, otherwise its local `wharf up` address
    /// (http://127.0.0.1:5000, 5001, 5002).
    #[arg(long, value_enum, required_unless_present = "url")]
    service: Option<Service>,
    /// The service's base URL, e.g. one pod's http://10.0.3.7:8080; overrides the URL --service
    /// implies (--service then only names it in the output).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    url: Option<String>,
    /// How long to wait for the service to answer: 10s, 500ms, 1m…
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse_positive)]
    timeout: Duration,
    #[command(flatten)]
    access: AccessArgs,
}

#[derive(Debug, Args)]
struct KillArgs {
    #[command(flatten)]
    target: Target,
    /// The actor to kill, as `wharf chaos status` lists it, e.g. products/store/0.
    #[arg(value_name = "ACTOR", required_unless_present = "all_matching", conflicts_with = "all_matching")]
    actor: Option<String>,
    /// Kill every listed actor whose name starts with PREFIX instead, e.g. orders/store/ for all
    /// the store's workers.
    #[arg(long, value_name = "PREFIX")]
    all_matching: Option<String>,
}

#[derive(Debug, Args)]
struct LatencyArgs {
    #[command(flatten)]
    target: Target,
    /// The delay added before each request runs, in ms (1 to 60000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    ms: u64,
    /// Vary the delay uniformly by up to this much either way, in ms (at most --ms).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    jitter_ms: u64,
    #[command(flatten)]
    window: Window,
}

#[derive(Debug, Args)]
struct ErrorsArgs {
    #[command(flatten)]
    target: Target,
    /// The share of requests that fail, more than 0 and at most 1 (0.3 = 30%).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    rate: f64,
    /// The HTTP status of the injected errors, 500 to 599; 503 also sends Retry-After: 1.
    #[arg(long, value_name = "STATUS", default_value_t = 503, value_parser = clap::value_parser!(u16).range(500..=599))]
    status: u16,
    #[command(flatten)]
    window: Window,
}

/// How long and where latency or errors apply.
#[derive(Debug, Args)]
struct Window {
    /// How long the fault lasts, then ends by itself: 30s, 2m, 1m30s, 1h (1 s to 1 h, whole seconds).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_window)]
    duration_secs: u64,
    /// Only requests whose path starts with this suffer (never /health*, /metrics, /admin/*).
    #[arg(long, value_name = "PATH", default_value = "/api/")]
    path_prefix: String,
}

#[derive(Debug, Args)]
struct UnreadyArgs {
    #[command(flatten)]
    target: Target,
    /// How long readiness stays 503, then recovers by itself: 30s, 2m, 1h (1 s to 1 h).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_window)]
    duration_secs: u64,
}

/// Sends the one order the subcommand names: exit 0 done, 1 refused or unreachable, 2 bad flags.
pub async fn run(args: ChaosArgs) -> ExitCode {
    let target = match &args.action {
        Action::Status(target) | Action::Ready(target) | Action::Clear(target) => target,
        Action::Kill(kill) => &kill.target,
        Action::Latency(latency) => &latency.target,
        Action::Errors(errors) => &errors.target,
        Action::Unready(unready) => &unready.target,
    };
    if let Action::Latency(latency) = &args.action
        && latency.jitter_ms > latency.ms
    {
        eprintln!("error: --jitter-ms ({}) must not exceed --ms ({})", latency.jitter_ms, latency.ms);
        return ExitCode::from(2);
    }
    let admin = match Admin::for_target(target) {
        Ok(admin) => admin,
        Err(Refusal::Usage(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
        Err(Refusal::Failed(message)) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match admin.act(args.action).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{}: {message}", admin.label);
            ExitCode::FAILURE
        }
    }
}

/// Why the command stopped before it sent anything.
enum Refusal {
    /// The flags or the environment are wrong: exit 2.
    Usage(String),
    /// The client could not be set up: exit 1.
    Failed(String),
}

/// The service a chaos order goes to, and how the output names it.
struct Admin {
    /// `orders`, or the URL when only `--url` was given.
    label: String,
    routes: ChaosAdmin,
}

impl Admin {
    fn for_target(target: &Target) -> Result<Self, Refusal> {
        let (label, base) = match (target.service, &target.url) {
            (service, Some(url)) => (service.map_or_else(|| url.clone(), |s| s.name().to_owned()), url.clone()),
            (Some(service), None) => {
                let variable = service.url_variable();
                let url = match std::env::var(variable) {
                    Ok(url) if !url.trim().is_empty() => {
                        parse_url(url.trim()).map_err(|err| Refusal::Usage(format!("{variable}: {err}")))?
                    }
                    _ => service.local_url().to_owned(),
                };
                (service.name().to_owned(), url)
            }
            (None, None) => return Err(Refusal::Usage("give --service or --url".to_owned())),
        };
        let options = ClientOptions { timeout: target.timeout, connections: 1, token: target.access.token.clone() };
        let client = Client::new(&options).map_err(|err| Refusal::Failed(err.to_string()))?;
        Ok(Self { label, routes: ChaosAdmin::new(client, &base) })
    }

    async fn act(&self, action: Action) -> Result<(), String> {
        match action {
            Action::Status(_) => {
                let state = self.routes.state().await.map_err(|err| err.to_string())?;
                print!("{}", self.render(&state));
            }
            Action::Kill(kill) => self.kill(kill).await?,
            Action::Latency(latency) => {
                let window = latency.window;
                let plan = FaultPlan::latency(latency.ms, latency.jitter_ms, window.duration_secs, &window.path_prefix);
                self.routes.arm(&plan).await.map_err(|err| err.to_string())?;
                let jitter = if latency.jitter_ms > 0 { format!("±{}", latency.jitter_ms) } else { String::new() };
                println!(
                    "{}: latency {}{jitter} ms on {} for {}",
                    self.label,
                    latency.ms,
                    window.path_prefix,
                    span(window.duration_secs)
                );
            }
            Action::Errors(errors) => {
                let window = errors.window;
                let plan = FaultPlan::errors(errors.rate, errors.status, window.duration_secs, &window.path_prefix);
                self.routes.arm(&plan).await.map_err(|err| err.to_string())?;
                println!(
                    "{}: errors {}% → {} on {} for {}",
                    self.label,
                    percent(errors.rate),
                    errors.status,
                    window.path_prefix,
                    span(window.duration_secs)
                );
            }
            Action::Unready(unready) => {
                self.routes.force_unready(unready.duration_secs).await.map_err(|err| err.to_string())?;
                println!(
                    "{}: readiness forced to 503 for {} (liveness untouched)",
                    self.label,
                    span(unready.duration_secs)
                );
            }
            Action::Ready(_) => {
                self.routes.restore_readiness().await.map_err(|err| err.to_string())?;
                println!("{}: readiness restored", self.label);
            }
            Action::Clear(_) => {
                self.routes.disarm().await.map_err(|err| err.to_string())?;
                self.routes.restore_readiness().await.map_err(|err| err.to_string())?;
                println!("{}: latency and errors cleared, readiness restored", self.label);
            }
        }
        Ok(())
    }

    async fn kill(&self, kill: KillArgs) -> Result<(), String> {
        // Asking first gives a clear answer for an unknown name, and for routes not mounted.
        let actors = self.routes.actors().await.map_err(|err| err.to_string())?;
        let victims: Vec<String> = match (kill.actor, kill.all_matching) {
            (Some(actor), _) if actors.contains(&actor) => vec![actor],
            (Some(actor), _) => {
                return Err(format!("no killable actor is named {actor:?}; `wharf chaos status` lists them"));
            }
            (None, Some(prefix)) => actors.into_iter().filter(|a| a.starts_with(&prefix)).collect(),
            (None, None) => return Err("name an actor, or give --all-matching".to_owned()),
        };
        if victims.is_empty() {
            return Err("no killable actor's name starts with that prefix; `wharf chaos status` lists them".to_owned());
        }
        for actor in victims {
            self.routes.kill(&actor).await.map_err(|err| err.to_string())?;
            println!("{}: killed {actor}; its supervisor restarts it", self.label);
        }
        Ok(())
    }

    /// The state as a small table.
    fn render(&self, state: &ChaosState) -> String {
        let left = |remaining: Option<u64>| remaining.map_or_else(|| "-".to_owned(), span);
        let mut rows: Vec<[String; 3]> = Vec::new();
        if let Some(faults) = &state.faults {
            let (latency, errors) = settings(faults);
            let left = |setting: &str| if setting == "none" { "-".to_owned() } else { left(faults.remaining_secs) };
            rows.push(["latency".to_owned(), latency.clone(), left(&latency)]);
            rows.push(["errors".to_owned(), errors.clone(), left(&errors)]);
        } else {
            rows.push(["latency".to_owned(), "none".to_owned(), "-".to_owned()]);
            rows.push(["errors".to_owned(), "none".to_owned(), "-".to_owned()]);
        }
        rows.push(match &state.readiness_override {
            Some(forced) => ["readiness".to_owned(), "forced 503".to_owned(), left(forced.remaining_secs)],
            None => ["readiness".to_owned(), "not forced".to_owned(), "-".to_owned()],
        });

        let mut out = format!("{} ({})\n", self.label, self.routes.base());
        let width = rows.iter().map(|row| row[1].chars().count()).max().unwrap_or(0).max(7);
        out.push_str(&format!("  {:<10} {:<width$}  {}\n", "FAULT", "SETTING", "LEFT"));
        for [name, setting, left] in &rows {
            out.push_str(&format!("  {name:<10} {setting:<width$}  {left}\n"));
        }
        out.push_str(&format!(
            "  injected so far: {} delayed, {} failed\n",
            state.injected.latency, state.injected.error
        ));
        if state.actors.is_empty() {
            out.push_str("  no killable actors\n");
        } else {
            out.push_str(&format!("  ACTORS ({})\n", state.actors.len()));
            for actor in &state.actors {
                out.push_str(&format!("  {actor}\n"));
            }
        }
        out
    }
}

/// The latency and errors of an armed plan as the status table states them (`none` when off).
fn settings(faults: &ArmedFaults) -> (String, String) {
    let prefix = faults.path_prefix.as_deref().unwrap_or("/api/");
    let latency = match faults.latency_jitter_ms {
        _ if faults.latency_ms == 0 => "none".to_owned(),
        Some(jitter) if jitter > 0 => format!("{}±{jitter} ms on {prefix}", faults.latency_ms),
        _ => format!("{} ms on {prefix}", faults.latency_ms),
    };
    let errors = if faults.error_rate > 0.0 {
        format!("{}% → {} on {prefix}", percent(faults.error_rate), faults.error_status.unwrap_or(503))
    } else {
        "none".to_owned()
    };
    (latency, errors)
}

/// `30%`, `12.5%`.
fn percent(rate: f64) -> f64 {
    (rate * 1000.0).round() / 10.0
}

/// A window as chaos's output states it: `45 s`, `2 min`, `90 s` — spaced, unlike
/// [`duration::human`], because these lines are chaos's published output and are kept as they are.
fn span(secs: u64) -> String {
    if secs >= 60 && secs.is_multiple_of(60) { format!("{} min", secs / 60) } else { format!("{secs} s") }
}

/// A fault's duration: whole seconds from 1 s to 1 h, with a unit.
fn parse_window(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    // Elsewhere a bare number is seconds; a fault's window says its unit, since `--for 30` could
    // as well be read as minutes and a fault lasting 60 times too long is no small mistake.
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{text:?} needs a unit: ms, s, m or h (e.g. {text}s)"));
    }
    let window = duration::parse(raw)?;
    if window.subsec_nanos() != 0 {
        return Err(format!("{raw:?} is not a whole number of seconds"));
    }
    match window.as_secs() {
        secs @ 1..=3600 => Ok(secs),
        _ => Err(format!("{raw:?} is out of range: from 1s to 1h")),
    }
}

/// An error rate: more than 0, at most 1.
fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1.0 => Ok(rate),
        _ => Err(format!("{raw:?} is not a rate: expected a number more than 0 and at most 1, e.g. 0.3 for 30%")),
    }
}

/// An `http://` or `https://` URL.
fn parse_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(url.to_owned()),
        _ => Err(format!("{raw:?} is not an http:// or https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_seconds_within_an_hour_with_a_unit() {
        assert_eq!(parse_window("30s"), Ok(30));
        assert_eq!(parse_window("2m"), Ok(120));
        assert_eq!(parse_window("1m30s"), Ok(90));
        assert_eq!(parse_window("1h"), Ok(3600));
        assert!(parse_window("30").unwrap_err().contains("needs a unit"));
        assert!(parse_window("3x").unwrap_err().contains("unknown unit"));
        assert!(parse_window("500ms").unwrap_err().contains("whole number of seconds"));
        assert!(parse_window("1.5s").unwrap_err().contains("whole number of seconds"));
        assert!(parse_window("0s").unwrap_err().contains("from 1s to 1h"));
        assert!(parse_window("2h").unwrap_err().contains("from 1s to 1h"));
    }

    #[test]
    fn rates_urls_and_output_formats() {
        assert_eq!(parse_rate("0.3"), Ok(0.3));
        assert_eq!(parse_rate("1"), Ok(1.0));
        for bad in ["0", "1.5", "-0.1", "half", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(parse_url("https://orders.example.com").is_ok());
        assert!(parse_url("127.0.0.1:5000").is_err());
        assert!(parse_url("http://").is_err());
        assert_eq!(percent(0.3), 30.0);
        assert_eq!(percent(0.125), 12.5);
        assert_eq!(span(45), "45 s");
        assert_eq!(span(120), "2 min");
        assert_eq!(span(90), "90 s");
    }
}
