//! The slot store suite: what every [`SlotStore`] implementation must do.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::BotId;
use crate::meeting::MeetingPlatform;
use crate::slots::{NewSlot, SlotState, SlotStore};
use crate::testkit::Violation;

fn fail<T>(check: &'static str, message: impl Into<String>) -> Result<T, Violation> {
    Err(Violation::new(check, message))
}

fn new_slot(pool: &str, id: impl Into<String>, platform: MeetingPlatform) -> NewSlot {
    NewSlot {
        pool: pool.to_owned(),
        slot_id: id.into(),
        meeting_platform: platform,
        connection_url: None,
    }
}

async fn add(check: &'static str, store: &dyn SlotStore, slot: NewSlot) -> Result<(), Violation> {
    store
        .add_slot(slot)
        .await
        .map(|_| ())
        .or_else(|e| fail(check, format!("add_slot failed: {e}")))
}

/// `tasks` concurrent claims for distinct bots against `slots` idle slots
/// (`slots < tasks`): exactly `slots` succeed and no slot is claimed twice.
pub async fn claims_are_exclusive(
    store: Arc<dyn SlotStore>,
    pool: &str,
    slots: usize,
    tasks: usize,
) -> Result<(), Violation> {
    const CHECK: &str = "claims_are_exclusive";
    for i in 0..slots {
        add(
            CHECK,
            store.as_ref(),
            new_slot(pool, format!("excl-{i:04}"), MeetingPlatform::Zoom),
        )
        .await?;
    }
    let mut set = tokio::task::JoinSet::new();
    for i in 0..tasks {
        let store = Arc::clone(&store);
        let pool = pool.to_owned();
        set.spawn(async move {
            let bot = BotId(1_000_000 + i as u64);
            store
                .claim_slot(&pool, MeetingPlatform::Zoom, bot)
                .await
                .map(|s| (bot, s))
        });
    }
    let mut claimed = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok((bot, Some(slot)))) => claimed.push((bot, slot)),
            Ok(Ok((_, None))) => {}
            Ok(Err(e)) => return fail(CHECK, format!("claim_slot failed: {e}")),
            Err(e) => return fail(CHECK, format!("a claiming task panicked: {e}")),
        }
    }
    if claimed.len() != slots {
        return fail(
            CHECK,
            format!(
                "{tasks} claims on {slots} slots: {} succeeded",
                claimed.len()
            ),
        );
    }
    let distinct: BTreeSet<_> = claimed.iter().map(|(_, s)| s.slot_id.clone()).collect();
    if distinct.len() != slots {
        return fail(
            CHECK,
            format!("{slots} claims got only {} distinct slots", distinct.len()),
        );
    }
    for (bot, slot) in &claimed {
        if slot.state != (SlotState::Claimed { bot_id: *bot }) {
            return fail(
                CHECK,
                format!("claimed slot {} reads {:?}", slot.slot_id, slot.state),
            );
        }
    }
    let listed = store
        .list_slots(pool)
        .await
        .or_else(|e| fail(CHECK, format!("list_slots failed: {e}")))?;
    let held = listed
        .iter()
        .filter(|s| matches!(s.state, SlotState::Claimed { .. }))
        .count();
    if held != slots {
        return fail(
            CHECK,
            format!("after the claims {held} slots are claimed, expected {slots}"),
        );
    }
    Ok(())
}

/// A claim for one meeting platform never gets another's slot.
pub async fn claims_respect_meeting_platform(
    store: &dyn SlotStore,
    pool: &str,
) -> Result<(), Violation> {
    const CHECK: &str = "claims_respect_meeting_platform";
    add(
        CHECK,
        store,
        new_slot(pool, "mp-zoom", MeetingPlatform::Zoom),
    )
    .await?;
    add(
        CHECK,
        store,
        new_slot(pool, "mp-meet", MeetingPlatform::Meet),
    )
    .await?;
    let teams = store
        .claim_slot(pool, MeetingPlatform::Teams, BotId(1))
        .await;
    match teams {
        Ok(None) => {}
        Ok(Some(slot)) => {
            return fail(
                CHECK,
                format!(
                    "a Teams claim got {} ({})",
                    slot.slot_id, slot.meeting_platform
                ),
            );
        }
        Err(e) => return fail(CHECK, format!("claim_slot failed: {e}")),
    }
    match store
        .claim_slot(pool, MeetingPlatform::Meet, BotId(2))
        .await
    {
        Ok(Some(slot)) if slot.slot_id == "mp-meet" => Ok(()),
        Ok(other) => fail(CHECK, format!("a Meet claim got {other:?}")),
        Err(e) => fail(CHECK, format!("claim_slot failed: {e}")),
    }
}

/// A bot that already holds a slot gets the same slot when it claims again.
pub async fn claim_is_idempotent_per_bot(
    store: &dyn SlotStore,
    pool: &str,
) -> Result<(), Violation> {
    const CHECK: &str = "claim_is_idempotent_per_bot";
    for id in ["idem-a", "idem-b"] {
        add(CHECK, store, new_slot(pool, id, MeetingPlatform::Teams)).await?;
    }
    let first = store
        .claim_slot(pool, MeetingPlatform::Teams, BotId(7))
        .await;
    let second = store
        .claim_slot(pool, MeetingPlatform::Teams, BotId(7))
        .await;
    match (first, second) {
        (Ok(Some(a)), Ok(Some(b))) if a.slot_id == b.slot_id => {}
        (a, b) => return fail(CHECK, format!("two claims by one bot: {a:?} then {b:?}")),
    }
    let listed = store
        .list_slots(pool)
        .await
        .or_else(|e| fail(CHECK, format!("list_slots failed: {e}")))?;
    let held = listed
        .iter()
        .filter(|s| s.state == SlotState::Claimed { bot_id: BotId(7) })
        .count();
    if held != 1 {
        return fail(CHECK, format!("bot 7 holds {held} slots, expected 1"));
    }
    Ok(())
}

/// Only the holder can release a slot, and releasing twice is a harmless `false`.
pub async fn release_only_by_holder(store: &dyn SlotStore, pool: &str) -> Result<(), Violation> {
    const CHECK: &str = "release_only_by_holder";
    add(CHECK, store, new_slot(pool, "rel-1", MeetingPlatform::Meet)).await?;
    let slot = match store
        .claim_slot(pool, MeetingPlatform::Meet, BotId(11))
        .await
    {
        Ok(Some(slot)) => slot,
        other => return fail(CHECK, format!("claim failed: {other:?}")),
    };
    let check = |got: crate::Result<bool>, want: bool, what: &str| match got {
        Ok(v) if v == want => Ok(()),
        other => fail(CHECK, format!("{what}: expected {want}, got {other:?}")),
    };
    check(
        store.release_slot(pool, &slot.slot_id, BotId(12)).await,
        false,
        "release by another bot",
    )?;
    check(
        store.release_slot(pool, &slot.slot_id, BotId(11)).await,
        true,
        "release by the holder",
    )?;
    check(
        store.release_slot(pool, &slot.slot_id, BotId(11)).await,
        false,
        "second release",
    )?;
    match store.get_slot(pool, &slot.slot_id).await {
        Ok(Some(s)) if s.state == SlotState::Idle => Ok(()),
        other => fail(CHECK, format!("released slot reads {other:?}")),
    }
}

/// A failed slot is not handed out until recovered, and keeps its reason.
pub async fn failed_slots_are_not_handed_out(
    store: &dyn SlotStore,
    pool: &str,
) -> Result<(), Violation> {
    const CHECK: &str = "failed_slots_are_not_handed_out";
    add(
        CHECK,
        store,
        new_slot(pool, "fail-1", MeetingPlatform::Zoom),
    )
    .await?;
    match store
        .mark_slot_failed(pool, "fail-1", "deployment failed: image pull")
        .await
    {
        Ok(true) => {}
        other => return fail(CHECK, format!("mark_slot_failed: {other:?}")),
    }
    match store.get_slot(pool, "fail-1").await {
        Ok(Some(s))
            if s.state
                == (SlotState::Failed {
                    reason: "deployment failed: image pull".into(),
                }) => {}
        other => return fail(CHECK, format!("failed slot reads {other:?}")),
    }
    match store
        .claim_slot(pool, MeetingPlatform::Zoom, BotId(21))
        .await
    {
        Ok(None) => {}
        other => return fail(CHECK, format!("a failed slot was handed out: {other:?}")),
    }
    match store.recover_slot(pool, "fail-1").await {
        Ok(true) => {}
        other => return fail(CHECK, format!("recover_slot: {other:?}")),
    }
    match store
        .claim_slot(pool, MeetingPlatform::Zoom, BotId(21))
        .await
    {
        Ok(Some(s)) if s.slot_id == "fail-1" => Ok(()),
        other => fail(
            CHECK,
            format!("a recovered slot was not handed out: {other:?}"),
        ),
    }
}

/// Adding an existing slot changes nothing (adoption at start-up is safe).
pub async fn add_is_idempotent(store: &dyn SlotStore, pool: &str) -> Result<(), Violation> {
    const CHECK: &str = "add_is_idempotent";
    add(
        CHECK,
        store,
        new_slot(pool, "add-1", MeetingPlatform::Teams),
    )
    .await?;
    if let Err(e) = store
        .claim_slot(pool, MeetingPlatform::Teams, BotId(31))
        .await
    {
        return fail(CHECK, format!("claim failed: {e}"));
    }
    match store
        .add_slot(new_slot(pool, "add-1", MeetingPlatform::Teams))
        .await
    {
        Ok(s) if s.state == (SlotState::Claimed { bot_id: BotId(31) }) => {}
        other => return fail(CHECK, format!("re-adding a claimed slot gave {other:?}")),
    }
    match store.remove_slot(pool, "add-1").await {
        Ok(false) => Ok(()),
        other => fail(CHECK, format!("a claimed slot was removed: {other:?}")),
    }
}

/// Runs every slot-store check, each in its own pool named after `pool_prefix`
/// (so a shared database can hold several runs).
pub async fn run_slot_store_suite(
    store: Arc<dyn SlotStore>,
    pool_prefix: &str,
) -> Result<(), Violation> {
    claims_are_exclusive(
        Arc::clone(&store),
        &format!("{pool_prefix}-exclusive"),
        8,
        40,
    )
    .await?;
    claims_respect_meeting_platform(store.as_ref(), &format!("{pool_prefix}-platform")).await?;
    claim_is_idempotent_per_bot(store.as_ref(), &format!("{pool_prefix}-idempotent")).await?;
    release_only_by_holder(store.as_ref(), &format!("{pool_prefix}-release")).await?;
    failed_slots_are_not_handed_out(store.as_ref(), &format!("{pool_prefix}-failed")).await?;
    add_is_idempotent(store.as_ref(), &format!("{pool_prefix}-add")).await?;
    Ok(())
}
