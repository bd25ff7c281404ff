//! Invalidation hooks, fired by every write after its transaction commits, and awaited
//! before the write's response is sent. Each removes exactly what the write made stale.

use serde::{Deserialize, Serialize};

use super::keys::tags;
use super::Cache;

/// A member write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberAction {
    /// A member was created.
    Create,
    /// A member was changed.
    Update,
    /// A member was deleted.
    Delete,
}

/// An application decision or submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationAction {
    /// Submitted (pending).
    Submit,
    /// Approved (creates a member).
    Approve,
    /// Rejected.
    Reject,
}

/// What an invalidation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalidation {
    /// Tags invalidated.
    pub tags: Vec<String>,
    /// Keys removed, or `None` when Redis was unreachable and the invalidation was
    /// deferred (the cache is bypassed until it is applied).
    pub removed: Option<u64>,
}

async fn apply(cache: &Cache, tags: Vec<String>) -> Invalidation {
    let removed = cache.invalidate(tags.clone()).await;
    Invalidation { tags, removed }
}

/// `on_member_change(action, id)`: the member's own entries (by id and by ID number), and
/// statistics and analytics when the write changes what they count (every create and
/// delete; an update only when it touches gender, birth date, ward or status).
pub async fn on_member_change(
    cache: &Cache,
    action: MemberAction,
    id: i64,
    id_number: &str,
    counted_fields_changed: bool,
) -> Invalidation {
    let mut t = vec![tags::member(id), tags::member_id_number(id_number)];
    if action != MemberAction::Update || counted_fields_changed {
        t.push(tags::STATISTICS.into());
        t.push(tags::ANALYTICS.into());
    }
    apply(cache, t).await
}

/// `on_membership_application_change(action)`: statistics (pending count) and analytics
/// (application pipeline); an approval also created `member` (id, ID number).
pub async fn on_membership_application_change(
    cache: &Cache,
    _action: ApplicationAction,
    member: Option<(i64, &str)>,
) -> Invalidation {
    let mut t = vec![tags::STATISTICS.into(), tags::ANALYTICS.into()];
    if let Some((id, idn)) = member {
        t.push(tags::member(id));
        t.push(tags::member_id_number(idn));
    }
    apply(cache, t).await
}

/// `on_leadership_change(ward, role)`: the old and new leader's member entries (they list
/// roles), statistics (positions filled) and analytics (leadership coverage).
pub async fn on_leadership_change(cache: &Cache, leaders: &[(i64, String)]) -> Invalidation {
    let mut t = vec![tags::STATISTICS.into(), tags::ANALYTICS.into()];
    for (id, idn) in leaders {
        t.push(tags::member(*id));
        t.push(tags::member_id_number(idn));
    }
    apply(cache, t).await
}

/// `on_bulk_operation(import, count)`: statistics and analytics (new members have no
/// cached entries of their own: only successful reads are stored).
pub async fn on_bulk_operation(cache: &Cache, _count: usize) -> Invalidation {
    apply(cache, vec![tags::STATISTICS.into(), tags::ANALYTICS.into()]).await
}
