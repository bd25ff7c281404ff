//! Invalidation hooks: each names exactly the tags a write makes stale. [`write`] runs a
//! write's transaction, records the hook's tags in the outbox in that same transaction,
//! and after commit applies them (awaited before the write's response is sent), so an
//! invalidation survives a Redis outage and an API restart.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::keys::tags;
use super::Cache;
use crate::db::{outbox, Db, DbError};

/// A member write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MemberAction {
    /// A member was created.
    Create,
    /// A member was changed.
    Update,
    /// A member was deleted.
    Delete,
}

/// What an invalidation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Invalidation {
    /// Tags invalidated.
    pub tags: Vec<String>,
    /// Keys removed, or `None` when Redis was unreachable and the invalidation was
    /// deferred (the cache is bypassed until it is applied).
    pub removed: Option<u64>,
}

/// Runs `f` in a write transaction; the tags it returns are recorded in the outbox in the
/// same transaction and applied to the cache after commit.
pub(crate) async fn write<T, F>(
    db: &Arc<Db>,
    cache: &Cache,
    f: F,
) -> Result<(T, Invalidation), DbError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<String>), DbError> + Send + 'static,
{
    let (out, recorded) = db
        .write(move |tx| {
            let (out, tags) = f(tx)?;
            Ok((out, outbox::record(tx, &tags)?))
        })
        .await?;
    let tags = recorded.tags.clone();
    let removed = cache.apply(recorded).await;
    Ok((out, Invalidation { tags, removed }))
}

/// `on_member_change(action, id)`: the member's own entries (by id and by ID number), and
/// statistics and analytics when the write changes what they count (every create and
/// delete; an update only when it touches gender, birth date, ward or status).
pub(crate) fn on_member_change(
    action: MemberAction,
    id: i64,
    id_number: &str,
    counted_fields_changed: bool,
) -> Vec<String> {
    let mut t = vec![tags::member(id), tags::member_id_number(id_number)];
    if action != MemberAction::Update || counted_fields_changed {
        t.push(tags::STATISTICS.into());
        t.push(tags::ANALYTICS.into());
    }
    t
}

/// `on_membership_application_change`: statistics (pending count) and analytics
/// (application pipeline); an approval also created `member` (id, ID number). The tags do
/// not depend on the decision, only on whether it created a member.
pub(crate) fn on_membership_application_change(member: Option<(i64, &str)>) -> Vec<String> {
    let mut t = vec![tags::STATISTICS.into(), tags::ANALYTICS.into()];
    if let Some((id, idn)) = member {
        t.push(tags::member(id));
        t.push(tags::member_id_number(idn));
    }
    t
}

/// `on_leadership_change(ward, role)`: the old and new leader's member entries (they list
/// roles), statistics (positions filled) and analytics (leadership coverage).
pub(crate) fn on_leadership_change(leaders: &[(i64, String)]) -> Vec<String> {
    let mut t = vec![tags::STATISTICS.into(), tags::ANALYTICS.into()];
    for (id, idn) in leaders {
        t.push(tags::member(*id));
        t.push(tags::member_id_number(idn));
    }
    t
}

/// `on_bulk_operation`: statistics and analytics, whatever the count (new members have no
/// cached entries of their own: only successful reads are stored).
pub(crate) fn on_bulk_operation() -> Vec<String> {
    vec![tags::STATISTICS.into(), tags::ANALYTICS.into()]
}
