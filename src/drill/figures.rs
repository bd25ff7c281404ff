//! What one drill run measured ([`Figures`]) and a typed handle on each measurement
//! ([`Figure`]): its name, its unit and how to read it. Reports list figures and gates
//! bound them through [`Figure`], so a figure's name is written once.

use serde::{Deserialize, Serialize};

/// What one drill run measured. Times are milliseconds from the fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Fault → first `+sdown` of the master.
    pub sdown_ms: Option<f64>,
    /// Fault → first `+odown` (detection).
    pub detection_ms: Option<f64>,
    /// Fault → `+switch-master` (promotion).
    pub promotion_ms: Option<f64>,
    /// Longest gap between acknowledged writes ending after the fault.
    pub write_unavailable_ms: Option<f64>,
    /// The same for reads.
    pub read_unavailable_ms: Option<f64>,
    /// Acknowledged writes.
    pub acked_writes: u64,
    /// Acknowledged writes missing after healing.
    pub lost_acked_writes: u64,
    /// The same in percent.
    pub lost_acked_percent: f64,
    /// Operations with unknown outcome.
    pub unknown_ops: u64,
    /// Refused operations.
    pub failed_ops: u64,
    /// Time two nodes answered ROLE with master.
    pub two_masters_ms: f64,
    /// Fault → the old master answers ROLE as a connected replica.
    pub rejoin_ms: Option<f64>,
    /// Fault → the topology is healthy again (one master, replicas linked, Sentinels agreeing).
    pub heal_ms: Option<f64>,
    /// `+tilt` events seen.
    pub tilt_events: u64,
    /// With `--api`: API responses that were not 2xx (whole run).
    pub api_errors: Option<u64>,
    /// With `--api`: responses answered with `X-Cache: BYPASS` (whole run).
    pub api_bypasses: Option<u64>,
    /// With `--api`: p99 API latency in µs from the fault until healed.
    pub api_fault_p99_us: Option<f64>,
}

/// One field of [`Figures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    /// [`Figures::sdown_ms`].
    SdownMs,
    /// [`Figures::detection_ms`].
    DetectionMs,
    /// [`Figures::promotion_ms`].
    PromotionMs,
    /// [`Figures::write_unavailable_ms`].
    WriteUnavailableMs,
    /// [`Figures::read_unavailable_ms`].
    ReadUnavailableMs,
    /// [`Figures::acked_writes`].
    AckedWrites,
    /// [`Figures::lost_acked_writes`].
    LostAckedWrites,
    /// [`Figures::lost_acked_percent`].
    LostAckedPercent,
    /// [`Figures::unknown_ops`].
    UnknownOps,
    /// [`Figures::failed_ops`].
    FailedOps,
    /// [`Figures::two_masters_ms`].
    TwoMastersMs,
    /// [`Figures::rejoin_ms`].
    RejoinMs,
    /// [`Figures::heal_ms`].
    HealMs,
    /// [`Figures::tilt_events`].
    TiltEvents,
    /// [`Figures::api_errors`].
    ApiErrors,
    /// [`Figures::api_bypasses`].
    ApiBypasses,
    /// [`Figures::api_fault_p99_us`].
    ApiFaultP99Us,
}

impl Figure {
    /// Every figure, in report order.
    pub const ALL: [Figure; 17] = [
        Figure::SdownMs,
        Figure::DetectionMs,
        Figure::PromotionMs,
        Figure::WriteUnavailableMs,
        Figure::ReadUnavailableMs,
        Figure::AckedWrites,
        Figure::LostAckedWrites,
        Figure::LostAckedPercent,
        Figure::UnknownOps,
        Figure::FailedOps,
        Figure::TwoMastersMs,
        Figure::RejoinMs,
        Figure::HealMs,
        Figure::TiltEvents,
        Figure::ApiErrors,
        Figure::ApiBypasses,
        Figure::ApiFaultP99Us,
    ];

    /// The field's name, as in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Figure::SdownMs => "sdown_ms",
            Figure::DetectionMs => "detection_ms",
            Figure::PromotionMs => "promotion_ms",
            Figure::WriteUnavailableMs => "write_unavailable_ms",
            Figure::ReadUnavailableMs => "read_unavailable_ms",
            Figure::AckedWrites => "acked_writes",
            Figure::LostAckedWrites => "lost_acked_writes",
            Figure::LostAckedPercent => "lost_acked_percent",
            Figure::UnknownOps => "unknown_ops",
            Figure::FailedOps => "failed_ops",
            Figure::TwoMastersMs => "two_masters_ms",
            Figure::RejoinMs => "rejoin_ms",
            Figure::HealMs => "heal_ms",
            Figure::TiltEvents => "tilt_events",
            Figure::ApiErrors => "api_errors",
            Figure::ApiBypasses => "api_bypasses",
            Figure::ApiFaultP99Us => "api_fault_p99_us",
        }
    }

    /// The unit of its value.
    pub fn unit(self) -> &'static str {
        match self {
            Figure::SdownMs
            | Figure::DetectionMs
            | Figure::PromotionMs
            | Figure::WriteUnavailableMs
            | Figure::ReadUnavailableMs
            | Figure::TwoMastersMs
            | Figure::RejoinMs
            | Figure::HealMs => "ms",
            Figure::ApiFaultP99Us => "µs",
            Figure::LostAckedPercent => "%",
            Figure::AckedWrites | Figure::LostAckedWrites => "writes",
            Figure::UnknownOps | Figure::FailedOps => "operations",
            Figure::TiltEvents => "events",
            Figure::ApiErrors | Figure::ApiBypasses => "responses",
        }
    }

    /// Its value in `f` (`None`: the run did not produce it).
    pub fn read(self, f: &Figures) -> Option<f64> {
        match self {
            Figure::SdownMs => f.sdown_ms,
            Figure::DetectionMs => f.detection_ms,
            Figure::PromotionMs => f.promotion_ms,
            Figure::WriteUnavailableMs => f.write_unavailable_ms,
            Figure::ReadUnavailableMs => f.read_unavailable_ms,
            Figure::AckedWrites => Some(f.acked_writes as f64),
            Figure::LostAckedWrites => Some(f.lost_acked_writes as f64),
            Figure::LostAckedPercent => Some(f.lost_acked_percent),
            Figure::UnknownOps => Some(f.unknown_ops as f64),
            Figure::FailedOps => Some(f.failed_ops as f64),
            Figure::TwoMastersMs => Some(f.two_masters_ms),
            Figure::RejoinMs => f.rejoin_ms,
            Figure::HealMs => f.heal_ms,
            Figure::TiltEvents => Some(f.tilt_events as f64),
            Figure::ApiErrors => f.api_errors.map(|v| v as f64),
            Figure::ApiBypasses => f.api_bypasses.map(|v| v as f64),
            Figure::ApiFaultP99Us => f.api_fault_p99_us,
        }
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_reads_its_own_field_and_names_it_as_json_does() {
        let f = Figures {
            sdown_ms: Some(1.0),
            detection_ms: Some(2.0),
            promotion_ms: Some(3.0),
            write_unavailable_ms: Some(4.0),
            read_unavailable_ms: Some(5.0),
            acked_writes: 6,
            lost_acked_writes: 7,
            lost_acked_percent: 8.0,
            unknown_ops: 9,
            failed_ops: 10,
            two_masters_ms: 11.0,
            rejoin_ms: Some(12.0),
            heal_ms: Some(13.0),
            tilt_events: 14,
            api_errors: Some(15),
            api_bypasses: Some(16),
            api_fault_p99_us: Some(17.0),
        };
        let json = serde_json::to_value(&f).unwrap();
        for (i, fig) in Figure::ALL.into_iter().enumerate() {
            assert_eq!(fig.read(&f), Some(i as f64 + 1.0), "{fig}");
            assert_eq!(json[fig.name()].as_f64(), Some(i as f64 + 1.0), "{fig}");
        }
        assert_eq!(Figure::ApiErrors.read(&Figures::default()), None);
    }
}
