//! The scheduler against DynamoDB Local and `cargo lambda watch`: exactly once per tick,
//! catch-up bound, settings.

use std::sync::Arc;
use std::time::Duration;

use switchyard::clock::Clock as _;
use switchyard::scheduler::Scheduler;
use switchyard::settings::Settings;
use switchyard::store::{EventStore, SchedulerStore, SettingsStore};
use time::OffsetDateTime;

use crate::common::*;

fn scheduled(name: &str, cron: &str) -> String {
    format!(
        "name: {name}\ndescription: scheduled {name}\nfunction: notify\ntriggers:\n  - schedule: {{ cron: \"{cron}\" }}\n"
    )
}

fn scheduler(app: &TestApp, bound: u32) -> Scheduler {
    Scheduler::new(
        app.dispatcher.clone(),
        Arc::new(app.store.clone()),
        bound,
        Duration::from_secs(86_400),
    )
}

/// Moves the test clock to 30 s past the next minute divisible by 5.
fn at_a_five_minute_mark(app: &TestApp) -> i64 {
    let now = app.clock.now().unix_timestamp();
    let minute = now.div_euclid(300) * 5 + 5;
    app.clock
        .set(OffsetDateTime::from_unix_timestamp(minute * 60 + 30).unwrap());
    minute
}

#[tokio::test]
async fn two_concurrent_scheduler_runs_dispatch_each_due_module_once() {
    let app = TestApp::new(&[
        scheduled("five", "*/5 * * * *"),
        scheduled("minutely", "rate(1 minute)"),
        scheduled("hourly-ish", "7 * * * *"),
    ])
    .await;
    let minute = at_a_five_minute_mark(&app);
    let (a, b) = (scheduler(&app, 15), scheduler(&app, 15));
    let (ra, rb) = tokio::join!(a.run(), b.run());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(app.invokes.get(), 2, "{ra:?} {rb:?}");
    let dispatched: Vec<_> = ra
        .ticks
        .iter()
        .chain(&rb.ticks)
        .filter(|t| t.outcome == "dispatched")
        .collect();
    assert_eq!(dispatched.len(), 2);
    let others: Vec<_> = ra
        .ticks
        .iter()
        .chain(&rb.ticks)
        .filter(|t| t.outcome != "dispatched")
        .collect();
    assert!(
        others
            .iter()
            .all(|t| t.outcome == "duplicate" || t.outcome == "in_progress"),
        "{others:?}"
    );
    let stamp = switchyard::schedule::minute_text(minute);
    let event = app
        .store
        .get_event("schedule", &format!("five@{stamp}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.jobs.len(), 1);
    let job = app.job(&event.jobs[0].job_id).await;
    assert_eq!(
        (job.trigger.as_str(), job.entity.as_str()),
        ("schedule", "schedule:five")
    );
    // A run in the same minute finds nothing new.
    assert!(scheduler(&app, 15).run().await.unwrap().ticks.is_empty());
    assert_eq!(app.invokes.get(), 2);
}

#[tokio::test]
async fn a_ten_minute_outage_catches_up_within_the_bound_and_records_skipped_ticks() {
    let app = TestApp::new(&[scheduled("minutely", "rate(1 minute)")]).await;
    let minute = at_a_five_minute_mark(&app);
    // The last processed minute was 11 minutes ago: 10 missed, plus this one.
    app.store
        .advance_tick(minute - 11, app.clock.now())
        .await
        .unwrap();
    let report = scheduler(&app, 5).run().await.unwrap();
    let count = |o: &str| report.ticks.iter().filter(|t| t.outcome == o).count();
    assert_eq!(count("dispatched"), 5, "{report:?}");
    assert_eq!(count("catch_up_bound"), 6);
    assert_eq!(app.invokes.get(), 5);
    let oldest = switchyard::schedule::minute_text(minute - 10);
    let skipped = app
        .store
        .get_event("schedule", &format!("minutely@{oldest}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.skipped[0].reason, "catch_up_bound");
    assert_eq!(app.store.last_tick().await.unwrap(), Some(minute));
}

#[tokio::test]
async fn a_switched_off_module_is_not_dispatched_and_the_skip_is_recorded() {
    let app = TestApp::new(&[scheduled("digest", "rate(1 minute)")]).await;
    let mut off = Settings::default();
    off.flags.insert("digest".into(), false);
    app.store
        .put_settings("global", &off, app.clock.now())
        .await
        .unwrap();
    let report = scheduler(&app, 15).run().await.unwrap();
    assert_eq!(report.ticks.len(), 1);
    assert_eq!(
        (
            report.ticks[0].outcome.as_str(),
            report.ticks[0].reason.as_deref()
        ),
        ("skipped", Some("disabled"))
    );
    assert_eq!(app.invokes.get(), 0);
    let id = format!("digest@{}", report.ticks[0].minute);
    let event = app.store.get_event("schedule", &id).await.unwrap().unwrap();
    assert_eq!(
        event.skipped[0].detail.as_deref(),
        Some("flag digest is off at global")
    );
}
