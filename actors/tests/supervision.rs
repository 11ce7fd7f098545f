//! Supervisor behaviour a service relies on: restarts after panics, errors and
//! kills; escalation of a restart storm; callers never hanging on a dead actor;
//! graceful, idempotent shutdown. Actor names are process-global, so every test
//! uses its own supervisor name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::{Probe, ProbeMsg, ProbeStats, eventually, fast_policy};
use wharf_actors::{
    ActorHandle, CallError, Liveness, RestartPolicy, Supervisor, SupervisorError, SupervisorHandle, chaos, child,
};

const CALL: Duration = Duration::from_millis(500);
const WAIT: Duration = Duration::from_secs(3);

async fn start_probe(name: &str, policy: RestartPolicy) -> (SupervisorHandle, ActorHandle<ProbeMsg>, ProbeStats) {
    let stats = ProbeStats::default();
    let (spec, handle) = child("probe", Probe::maker(&stats));
    let sup = Supervisor::start(name, policy, Liveness::new(), vec![spec]).await.unwrap();
    (sup, handle, stats)
}

/// Waits until the probe answers from incarnation `n`.
async fn await_incarnation(handle: &ActorHandle<ProbeMsg>, n: u64) {
    eventually(&format!("incarnation {n}"), WAIT, || async {
        match handle.call(ProbeMsg::Ping, CALL).await {
            Ok(i) if i == n => Some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_child_is_restarted_under_the_same_name() {
    let (sup, handle, _) = start_probe("sv-panic", fast_policy(5)).await;
    assert_eq!(handle.name(), "sv-panic/probe");
    assert_eq!(handle.call(ProbeMsg::Ping, CALL).await, Ok(1));

    handle.get().unwrap().cast(ProbeMsg::Panic).unwrap();

    await_incarnation(&handle, 2).await;
    assert!(ractor::registry::where_is("sv-panic/probe").is_some());
    assert_eq!(sup.liveness().restarts(), vec![("sv-panic/probe".to_owned(), 1)]);
    assert!(sup.liveness().is_alive());
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_child_is_restarted() {
    let (sup, handle, _) = start_probe("sv-kill", fast_policy(5)).await;
    assert_eq!(handle.call(ProbeMsg::Ping, CALL).await, Ok(1));

    chaos::kill("sv-kill/probe").unwrap();

    await_incarnation(&handle, 2).await;
    assert_eq!(sup.liveness().restarts(), vec![("sv-kill/probe".to_owned(), 1)]);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_returning_err_is_restarted() {
    let (sup, handle, _) = start_probe("sv-err", fast_policy(5)).await;
    handle.get().unwrap().cast(ProbeMsg::Fail).unwrap();
    await_incarnation(&handle, 2).await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_stops_by_itself_is_restarted() {
    let (sup, handle, _) = start_probe("sv-selfstop", fast_policy(5)).await;
    handle.get().unwrap().cast(ProbeMsg::Stop).unwrap();
    await_incarnation(&handle, 2).await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_storm_escalates_and_stops_the_supervisor() {
    let sibling_stats = ProbeStats::default();
    let stats = ProbeStats::default();
    let (sibling, sibling_handle) = child("sibling", Probe::maker(&sibling_stats));
    let (flappy, _) = child("flappy", Probe::maker(&stats));
    let liveness = Liveness::new();
    let sup = Supervisor::start("sv-storm", fast_policy(3), liveness.clone(), vec![sibling, flappy]).await.unwrap();

    let killer = tokio::spawn(async {
        loop {
            let _ = chaos::kill("sv-storm/flappy");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let reason = tokio::time::timeout(WAIT, liveness.failed()).await.expect("liveness never escalated");
    killer.abort();

    assert!(reason.contains("sv-storm/flappy"), "reason should name the child: {reason}");
    assert!(!liveness.is_alive());
    assert_eq!(liveness.failure().as_deref(), Some(reason.as_str()));
    tokio::time::timeout(WAIT, sup.stopped()).await.expect("supervisor still running");
    assert!(sup.is_stopped());
    // Three restarts were allowed; the fourth failure escalated instead. (A kill
    // can land during a restart's pre_start, so fewer incarnations may have run.)
    assert_eq!(liveness.restarts(), vec![("sv-storm/flappy".to_owned(), 3)]);
    assert!(stats.starts.load(Ordering::SeqCst) <= 4);
    // The healthy sibling was stopped too, and nobody answers for either name.
    assert!(ractor::registry::where_is("sv-storm/sibling").is_none());
    assert!(ractor::registry::where_is("sv-storm/flappy").is_none());
    assert_eq!(sibling_handle.call(ProbeMsg::Ping, CALL).await, Err(CallError::Unavailable("sv-storm/sibling".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_cannot_restart_escalates() {
    let (sup, handle, stats) = start_probe("sv-norestart", fast_policy(2)).await;
    stats.refuse_start.store(true, Ordering::SeqCst);
    chaos::kill("sv-norestart/probe").unwrap();

    let reason = tokio::time::timeout(WAIT, sup.liveness().failed()).await.expect("liveness never escalated");
    assert!(reason.contains("sv-norestart/probe"), "{reason}");
    assert!(reason.contains("restart failed"), "{reason}");
    tokio::time::timeout(WAIT, sup.stopped()).await.unwrap();
    assert!(handle.get().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_initial_spawn_fails_start_and_stops_earlier_children() {
    let ok_stats = ProbeStats::default();
    let bad_stats = ProbeStats::default();
    bad_stats.refuse_start.store(true, Ordering::SeqCst);
    let (first, first_handle) = child("first", Probe::maker(&ok_stats));
    let (second, _) = child("second", Probe::maker(&bad_stats));

    let err = Supervisor::start("sv-badstart", fast_policy(3), Liveness::new(), vec![first, second]).await.unwrap_err();

    match err {
        SupervisorError::ChildStart { child, .. } => assert_eq!(child, "sv-badstart/second"),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(ok_stats.starts.load(Ordering::SeqCst), 1);
    assert!(first_handle.get().is_none());
    eventually("first child gone", WAIT, || async {
        ractor::registry::where_is("sv-badstart/first").is_none().then_some(())
    })
    .await;
    assert!(ractor::registry::where_is("sv-badstart").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_actor_dies_mid_call_gets_died_not_a_hang() {
    let (sup, handle, _) = start_probe("sv-died", fast_policy(5)).await;

    // Joined in one task, both requests are sent on the first poll, before the kill.
    let in_flight = handle.call(|reply| ProbeMsg::Sleep(Duration::from_secs(30), reply), Duration::from_secs(60));
    // Queued behind the sleeping request, in the mailbox that dies with the actor.
    let queued = handle.call(ProbeMsg::Ping, Duration::from_secs(60));
    let kill = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        chaos::kill("sv-died/probe").unwrap();
    };
    let (in_flight, queued, ()) =
        tokio::time::timeout(WAIT, async { tokio::join!(in_flight, queued, kill) }).await.expect("a caller hung");
    assert_eq!(in_flight, Err(CallError::Died("sv-died/probe".into())));
    assert_eq!(queued, Err(CallError::Died("sv-died/probe".into())));

    // A slow reply is a timeout, not a death.
    await_incarnation(&handle, 2).await;
    let slow = handle.call(|reply| ProbeMsg::Sleep(Duration::from_millis(500), reply), Duration::from_millis(20)).await;
    assert_eq!(slow, Err(CallError::Timeout("sv-died/probe".into())));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_children_in_reverse_without_restarts_and_is_idempotent() {
    let stats: Vec<ProbeStats> = (0..3).map(|_| ProbeStats::default()).collect();
    let mut specs = Vec::new();
    let mut handles = Vec::new();
    for (i, s) in stats.iter().enumerate() {
        // Slow post_stop makes the shutdown take long enough to interfere with.
        s.stop_delay_ms.store(100, Ordering::SeqCst);
        let (spec, handle) = child(format!("c{i}"), Probe::maker(s));
        specs.push(spec);
        handles.push(handle);
    }
    let sup = Supervisor::start("sv-shutdown", fast_policy(5), Liveness::new(), specs).await.unwrap();
    assert_eq!(sup.name(), "sv-shutdown");
    assert_eq!(sup.children(), vec!["sv-shutdown/c0", "sv-shutdown/c1", "sv-shutdown/c2"]);

    let shutting_down = tokio::spawn({
        let sup = sup.clone();
        async move { sup.shutdown().await }
    });
    // c2 stops first; while it does, c0 is killed: it must not come back.
    eventually("c2 stopping", WAIT, || async { (stats[2].stops.load(Ordering::SeqCst) == 1).then_some(()) }).await;
    chaos::kill("sv-shutdown/c0").unwrap();
    let concurrent = sup.clone();
    tokio::time::timeout(WAIT, concurrent.shutdown()).await.expect("concurrent shutdown hung");
    tokio::time::timeout(WAIT, shutting_down).await.expect("shutdown hung").unwrap();

    assert!(sup.is_stopped());
    assert!(sup.liveness().is_alive(), "a requested shutdown is not a failure");
    assert!(sup.liveness().restarts().is_empty(), "restarted during shutdown: {:?}", sup.liveness().restarts());
    for (name, s) in sup.children().iter().zip(&stats) {
        assert!(ractor::registry::where_is(name).is_none(), "{name} still registered");
        assert_eq!(s.starts.load(Ordering::SeqCst), 1, "{name} was restarted");
    }
    // c2 and c1 stopped gracefully (post_stop ran); the killed c0 did not get to.
    let stops: Vec<u64> = stats.iter().map(|s| s.stops.load(Ordering::SeqCst)).collect();
    assert_eq!(stops, vec![0, 1, 1]);
    for handle in &handles {
        assert!(matches!(handle.call(ProbeMsg::Ping, CALL).await, Err(CallError::Unavailable(_))));
    }
    // Idempotent: a late shutdown returns at once.
    tokio::time::timeout(Duration::from_millis(200), sup.shutdown()).await.expect("second shutdown hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_killed_from_outside_fails_liveness() {
    let (sup, _, _) = start_probe("sv-killsup", fast_policy(5)).await;
    chaos::kill("sv-killsup").unwrap();
    let reason = tokio::time::timeout(WAIT, sup.liveness().failed()).await.expect("liveness never escalated");
    assert!(reason.contains("sv-killsup"), "{reason}");
    // Its children die with it.
    eventually("child gone", WAIT, || async { ractor::registry::where_is("sv-killsup/probe").is_none().then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_of_an_unknown_name_is_not_found() {
    assert_eq!(chaos::kill("sv-nobody/here"), Err(chaos::ChaosError::NotFound("sv-nobody/here".into())));
}
