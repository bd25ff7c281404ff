//! Drill gates: thresholds on drill figures, read from `drill.gates` in harness.yaml and
//! from the `drill:` section of a targets file (the same keys). A gate is named
//! `max_<figure>` and bounds that figure from above.
//!
//! Client gates bound every client's figures; `clients: {NAME: {...}}` gives one client
//! its own client gates instead (`{}`: reported, not gated).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::figures::{ClientFigure, Figure};

/// Thresholds on one client's figures; absent ones are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientGates {
    /// Longest client-visible write outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_write_unavailable_ms: Option<i64>,
    /// Longest client-visible read outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_read_unavailable_ms: Option<i64>,
    /// Acknowledged writes missing from the final read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lost_acked_writes: Option<i64>,
    /// The same as a percentage of acknowledged writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lost_acked_percent: Option<f64>,
    /// Operations whose outcome is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unknown_ops: Option<i64>,
}

impl ClientGates {
    /// Every gatable client figure with its threshold when set, in report order.
    pub fn thresholds(&self) -> [(ClientFigure, Option<f64>); 5] {
        let n = |v: Option<i64>| v.map(|v| v as f64);
        [
            (
                ClientFigure::WriteUnavailableMs,
                n(self.max_write_unavailable_ms),
            ),
            (
                ClientFigure::ReadUnavailableMs,
                n(self.max_read_unavailable_ms),
            ),
            (ClientFigure::LostAckedWrites, n(self.max_lost_acked_writes)),
            (ClientFigure::LostAckedPercent, self.max_lost_acked_percent),
            (ClientFigure::UnknownOps, n(self.max_unknown_ops)),
        ]
    }

    /// The set thresholds only.
    pub fn set(&self) -> impl Iterator<Item = (ClientFigure, f64)> {
        self.thresholds()
            .into_iter()
            .filter_map(|(f, v)| Some((f, v?)))
    }

    fn overridden_by(&self, over: &ClientGates) -> ClientGates {
        ClientGates {
            max_write_unavailable_ms: over
                .max_write_unavailable_ms
                .or(self.max_write_unavailable_ms),
            max_read_unavailable_ms: over
                .max_read_unavailable_ms
                .or(self.max_read_unavailable_ms),
            max_lost_acked_writes: over.max_lost_acked_writes.or(self.max_lost_acked_writes),
            max_lost_acked_percent: over.max_lost_acked_percent.or(self.max_lost_acked_percent),
            max_unknown_ops: over.max_unknown_ops.or(self.max_unknown_ops),
        }
    }
}

/// Drill thresholds; absent ones are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrillGates {
    /// Longest client-visible write outage, of every client.
    pub max_write_unavailable_ms: Option<i64>,
    /// Longest client-visible read outage, of every client.
    pub max_read_unavailable_ms: Option<i64>,
    /// Acknowledged writes missing from the final read, of every client.
    pub max_lost_acked_writes: Option<i64>,
    /// The same as a percentage of acknowledged writes.
    pub max_lost_acked_percent: Option<f64>,
    /// Operations whose outcome is unknown, of every client.
    pub max_unknown_ops: Option<i64>,
    /// Fault to `+switch-master`.
    pub max_promotion_ms: Option<i64>,
    /// Time with two nodes claiming to be master.
    pub max_two_masters_ms: Option<i64>,
    /// API responses that were not 2xx (with `api`).
    pub max_api_errors: Option<i64>,
    /// Clients with gates of their own, by name, instead of the client gates above.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<String, ClientGates>,
}

/// The name of the gate bounding `figure` (`max_<figure>`), as in the YAML.
pub(crate) fn gate_name(figure: &str) -> String {
    format!("max_{figure}")
}

impl DrillGates {
    /// Every gatable topology figure with its threshold when set, in report order.
    pub fn thresholds(&self) -> [(Figure, Option<f64>); 3] {
        let n = |v: Option<i64>| v.map(|v| v as f64);
        [
            (Figure::PromotionMs, n(self.max_promotion_ms)),
            (Figure::TwoMastersMs, n(self.max_two_masters_ms)),
            (Figure::ApiErrors, n(self.max_api_errors)),
        ]
    }

    /// The set topology thresholds only.
    pub fn set(&self) -> impl Iterator<Item = (Figure, f64)> {
        self.thresholds()
            .into_iter()
            .filter_map(|(f, v)| Some((f, v?)))
    }

    /// The client gates shared by every client without its own.
    pub fn shared(&self) -> ClientGates {
        ClientGates {
            max_write_unavailable_ms: self.max_write_unavailable_ms,
            max_read_unavailable_ms: self.max_read_unavailable_ms,
            max_lost_acked_writes: self.max_lost_acked_writes,
            max_lost_acked_percent: self.max_lost_acked_percent,
            max_unknown_ops: self.max_unknown_ops,
        }
    }

    /// The gates of client `name`: its own when named under `clients`, else the shared ones.
    pub fn for_client(&self, name: &str) -> ClientGates {
        self.clients
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.shared())
    }

    /// Every threshold, shared and per client, with the YAML key that set it (for checks
    /// of the values themselves).
    pub fn every_threshold(&self) -> Vec<(String, ClientFigure, f64)> {
        let mut out: Vec<(String, ClientFigure, f64)> = self
            .shared()
            .set()
            .map(|(f, v)| (gate_name(f.name()), f, v))
            .collect();
        for (name, g) in &self.clients {
            out.extend(
                g.set()
                    .map(|(f, v)| (format!("clients.{name}.{}", gate_name(f.name())), f, v)),
            );
        }
        out
    }

    /// These gates with every threshold set in `over` replacing ours, and every client
    /// `over` names having the gates `over` gives it (`{}` there ungates it).
    pub fn overridden_by(&self, over: &DrillGates) -> DrillGates {
        let shared = self.shared().overridden_by(&over.shared());
        let mut clients = self.clients.clone();
        clients.extend(over.clients.clone());
        DrillGates {
            max_write_unavailable_ms: shared.max_write_unavailable_ms,
            max_read_unavailable_ms: shared.max_read_unavailable_ms,
            max_lost_acked_writes: shared.max_lost_acked_writes,
            max_lost_acked_percent: shared.max_lost_acked_percent,
            max_unknown_ops: shared.max_unknown_ops,
            max_promotion_ms: over.max_promotion_ms.or(self.max_promotion_ms),
            max_two_masters_ms: over.max_two_masters_ms.or(self.max_two_masters_ms),
            max_api_errors: over.max_api_errors.or(self.max_api_errors),
            clients,
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
            max_unknown_ops: Some(5),
            max_promotion_ms: Some(6),
            max_two_masters_ms: Some(7),
            max_api_errors: Some(8),
            clients: BTreeMap::new(),
        };
        let yaml = serde_yaml_ng::to_value(&all).unwrap();
        let map = yaml.as_mapping().unwrap();
        assert_eq!(
            map.len(),
            all.thresholds().len() + all.shared().thresholds().len()
        );
        for (figure, v) in all.set() {
            assert_eq!(
                map[gate_name(figure.name()).as_str()].as_f64(),
                Some(v),
                "{figure}"
            );
        }
        for (figure, v) in all.shared().set() {
            assert_eq!(
                map[gate_name(figure.name()).as_str()].as_f64(),
                Some(v),
                "{figure}"
            );
        }
        assert_eq!(DrillGates::default().set().count(), 0);
    }

    #[test]
    fn a_named_client_has_its_own_gates_instead_of_the_shared_ones() {
        let g: DrillGates = serde_yaml_ng::from_str(
            "max_lost_acked_writes: 0\nmax_write_unavailable_ms: 9000\nclients:\n  reresolve-on-error: {max_lost_acked_percent: 20}\n  fixed-address: {}\n",
        )
        .unwrap();
        assert_eq!(
            g.for_client("sentinel-events").max_lost_acked_writes,
            Some(0)
        );
        let r = g.for_client("reresolve-on-error");
        assert_eq!(r.max_lost_acked_percent, Some(20.0));
        assert_eq!(r.max_write_unavailable_ms, None);
        assert_eq!(g.for_client("fixed-address").set().count(), 0);
        let e = serde_yaml_ng::from_str::<DrillGates>(
            "clients:\n  fixed-address: {max_promotion_ms: 5}\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown field `max_promotion_ms`"),
            "{e}"
        );
    }

    #[test]
    fn targets_override_the_config_per_threshold_and_per_client() {
        let config: DrillGates = serde_yaml_ng::from_str(
            "max_lost_acked_writes: 0\nmax_promotion_ms: 9000\nclients:\n  fixed-address: {max_unknown_ops: 5}\n",
        )
        .unwrap();
        let targets: DrillGates = serde_yaml_ng::from_str(
            "max_promotion_ms: 5000\nclients:\n  fixed-address: {max_lost_acked_percent: 50}\n  myapp: {max_lost_acked_writes: 3}\n",
        )
        .unwrap();
        let g = config.overridden_by(&targets);
        assert_eq!(g.max_promotion_ms, Some(5000));
        assert_eq!(g.max_lost_acked_writes, Some(0));
        let f = g.for_client("fixed-address");
        assert_eq!(
            (f.max_unknown_ops, f.max_lost_acked_percent),
            (None, Some(50.0)),
            "the targets file's entry replaces the config's"
        );
        assert_eq!(g.for_client("myapp").max_lost_acked_writes, Some(3));
    }
}
