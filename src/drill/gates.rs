//! Drill gates: thresholds on drill [`Figure`]s, read from `drill.gates` in harness.yaml
//! and from the `drill:` section of a targets file (the same keys). A gate is named
//! `max_<figure>` and bounds that figure from above.

use serde::{Deserialize, Serialize};

use super::figures::Figure;

/// Drill thresholds; absent ones are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrillGates {
    /// Longest client-visible write outage.
    pub max_write_unavailable_ms: Option<i64>,
    /// Longest client-visible read outage.
    pub max_read_unavailable_ms: Option<i64>,
    /// Acknowledged writes missing from the final read.
    pub max_lost_acked_writes: Option<i64>,
    /// The same as a percentage of acknowledged writes.
    pub max_lost_acked_percent: Option<f64>,
    /// Fault to `+switch-master`.
    pub max_promotion_ms: Option<i64>,
    /// Time with two nodes claiming to be master.
    pub max_two_masters_ms: Option<i64>,
    /// Operations whose outcome is unknown.
    pub max_unknown_ops: Option<i64>,
    /// API responses that were not 2xx (with `api`).
    pub max_api_errors: Option<i64>,
}

/// The name of the gate bounding `figure` (`max_<figure>`), as in the YAML.
pub(crate) fn gate_name(figure: Figure) -> String {
    format!("max_{}", figure.name())
}

impl DrillGates {
    /// Every gatable figure with its threshold when set, in report order.
    pub fn thresholds(&self) -> [(Figure, Option<f64>); 8] {
        let n = |v: Option<i64>| v.map(|v| v as f64);
        [
            (Figure::WriteUnavailableMs, n(self.max_write_unavailable_ms)),
            (Figure::ReadUnavailableMs, n(self.max_read_unavailable_ms)),
            (Figure::LostAckedWrites, n(self.max_lost_acked_writes)),
            (Figure::LostAckedPercent, self.max_lost_acked_percent),
            (Figure::PromotionMs, n(self.max_promotion_ms)),
            (Figure::TwoMastersMs, n(self.max_two_masters_ms)),
            (Figure::UnknownOps, n(self.max_unknown_ops)),
            (Figure::ApiErrors, n(self.max_api_errors)),
        ]
    }

    /// The set thresholds only.
    pub fn set(&self) -> impl Iterator<Item = (Figure, f64)> {
        self.thresholds()
            .into_iter()
            .filter_map(|(f, v)| Some((f, v?)))
    }

    /// These gates with every threshold set in `over` replacing ours.
    pub fn overridden_by(&self, over: &DrillGates) -> DrillGates {
        DrillGates {
            max_write_unavailable_ms: over
                .max_write_unavailable_ms
                .or(self.max_write_unavailable_ms),
            max_read_unavailable_ms: over
                .max_read_unavailable_ms
                .or(self.max_read_unavailable_ms),
            max_lost_acked_writes: over.max_lost_acked_writes.or(self.max_lost_acked_writes),
            max_lost_acked_percent: over.max_lost_acked_percent.or(self.max_lost_acked_percent),
            max_promotion_ms: over.max_promotion_ms.or(self.max_promotion_ms),
            max_two_masters_ms: over.max_two_masters_ms.or(self.max_two_masters_ms),
            max_unknown_ops: over.max_unknown_ops.or(self.max_unknown_ops),
            max_api_errors: over.max_api_errors.or(self.max_api_errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_names_are_the_yaml_keys() {
        let all = DrillGates {
            max_write_unavailable_ms: Some(1),
            max_read_unavailable_ms: Some(2),
            max_lost_acked_writes: Some(3),
            max_lost_acked_percent: Some(4.0),
            max_promotion_ms: Some(5),
            max_two_masters_ms: Some(6),
            max_unknown_ops: Some(7),
            max_api_errors: Some(8),
        };
        let yaml = serde_yaml_ng::to_value(&all).unwrap();
        let map = yaml.as_mapping().unwrap();
        assert_eq!(map.len(), all.thresholds().len());
        for (figure, v) in all.set() {
            assert_eq!(
                map[gate_name(figure).as_str()].as_f64(),
                Some(v),
                "{figure}"
            );
        }
        assert_eq!(DrillGates::default().set().count(), 0);
    }
}
