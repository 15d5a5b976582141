//! Several `serve` processes on one PostgreSQL database: one at a time runs
//! the platform sweep, and when it is killed (`kill -9`, nothing given
//! back) another takes the sweep over within two reconciler intervals.

use std::time::Duration;

use crate::common::PgDatabase;
use crate::support::ServeProcess;

/// The sweep lease's row, as the processes wrote it.
async fn holder(url: &str) -> Option<(String, i64, i64)> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT holder, acquired_at, renewed_at FROM service_leases WHERE name = 'platform_sweep'",
    )
    .fetch_optional(&mut db)
    .await
    .unwrap();
    let _ = db.close().await;
    row
}

fn pid_of(holder: &str) -> u32 {
    holder
        .strip_prefix("pid")
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("a holder names its process: {holder}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sweep_holder_is_replaced_within_two_intervals() {
    let db = PgDatabase::create().await;
    let env = [
        ("DATABASE_URL", db.url()),
        ("RECONCILE_INTERVAL", "1"),
        ("LOG_LEVEL", "info"),
    ];
    let mut first = ServeProcess::start(&env);
    let mut second = ServeProcess::start(&env);
    // One of them holds the lease, renewing it; the other waits.
    let mut seen = None;
    for _ in 0..100 {
        seen = holder(db.url()).await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (dead, _, _) = seen.expect("a process takes the sweep lease");
    let dead_pid = pid_of(&dead);
    let (victim, survivor) = if first.child.id() == dead_pid {
        (&mut first, &mut second)
    } else {
        assert_eq!(second.child.id(), dead_pid, "the holder is one of ours");
        (&mut second, &mut first)
    };
    // kill -9: the lease is not given back, only no longer renewed.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(dead_pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = victim.child.wait();
    let (_, _, last_renewal) = holder(db.url()).await.expect("the dead holder's row");
    let mut taken = None;
    for _ in 0..100 {
        if let Some(row) = holder(db.url()).await
            && row.0 != dead
        {
            taken = Some(row);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (new_holder, acquired_at, _) = taken.expect("the survivor takes the sweep over");
    assert_eq!(pid_of(&new_holder), survivor.child.id());
    // Measured on the database's own clock of the two processes: from the
    // dead holder's last renewal (it died after it) to the takeover.
    let gap_ms = acquired_at - last_renewal;
    assert!(
        gap_ms <= 2_000,
        "taken over {gap_ms} ms after the last renewal; two intervals are 2000 ms"
    );
}
