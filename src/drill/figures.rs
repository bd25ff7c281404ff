//! What one drill run measured: the topology's figures ([`Figures`], one per run) and
//! each client's ([`ClientFigures`], one per client per run), with a typed handle on each
//! measurement ([`Figure`], [`ClientFigure`]): its name, its unit and how to read it.
//! Reports list figures and gates bound them through these handles, so a figure's name
//! is written once.

use serde::{Deserialize, Serialize};

/// What one drill run measured of the topology. Times are milliseconds from the fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Fault → first `+sdown` of the master.
    pub sdown_ms: Option<f64>,
    /// Fault → first `+odown` (detection).
    pub detection_ms: Option<f64>,
    /// Fault → `+switch-master` (promotion).
    pub promotion_ms: Option<f64>,
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
    /// With `--api`: the longest gap between 2xx responses ending after the fault.
    pub api_unavailable_ms: Option<f64>,
}

/// What one client saw in one run. Times are milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientFigures {
    /// Longest gap between acknowledged writes ending after the fault.
    pub write_unavailable_ms: Option<f64>,
    /// The same for reads.
    pub read_unavailable_ms: Option<f64>,
    /// Acknowledged writes.
    pub acked_writes: u64,
    /// Acknowledged writes missing after healing (`None`: nothing could be read back).
    pub lost_acked_writes: Option<u64>,
    /// The same in percent.
    pub lost_acked_percent: Option<f64>,
    /// Operations with unknown outcome.
    pub unknown_ops: u64,
    /// Refused operations.
    pub failed_ops: u64,
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
    /// [`Figures::api_unavailable_ms`].
    ApiUnavailableMs,
}

impl Figure {
    /// Every figure, in report order.
    pub const ALL: [Figure; 11] = [
        Figure::SdownMs,
        Figure::DetectionMs,
        Figure::PromotionMs,
        Figure::TwoMastersMs,
        Figure::RejoinMs,
        Figure::HealMs,
        Figure::TiltEvents,
        Figure::ApiErrors,
        Figure::ApiBypasses,
        Figure::ApiFaultP99Us,
        Figure::ApiUnavailableMs,
    ];

    /// The field's name, as in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Figure::SdownMs => "sdown_ms",
            Figure::DetectionMs => "detection_ms",
            Figure::PromotionMs => "promotion_ms",
            Figure::TwoMastersMs => "two_masters_ms",
            Figure::RejoinMs => "rejoin_ms",
            Figure::HealMs => "heal_ms",
            Figure::TiltEvents => "tilt_events",
            Figure::ApiErrors => "api_errors",
            Figure::ApiBypasses => "api_bypasses",
            Figure::ApiFaultP99Us => "api_fault_p99_us",
            Figure::ApiUnavailableMs => "api_unavailable_ms",
        }
    }

    /// The unit of its value.
    pub fn unit(self) -> &'static str {
        match self {
            Figure::SdownMs
            | Figure::DetectionMs
            | Figure::PromotionMs
            | Figure::TwoMastersMs
            | Figure::RejoinMs
            | Figure::HealMs
            | Figure::ApiUnavailableMs => "ms",
            Figure::ApiFaultP99Us => "µs",
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
            Figure::TwoMastersMs => Some(f.two_masters_ms),
            Figure::RejoinMs => f.rejoin_ms,
            Figure::HealMs => f.heal_ms,
            Figure::TiltEvents => Some(f.tilt_events as f64),
            Figure::ApiErrors => f.api_errors.map(|v| v as f64),
            Figure::ApiBypasses => f.api_bypasses.map(|v| v as f64),
            Figure::ApiFaultP99Us => f.api_fault_p99_us,
            Figure::ApiUnavailableMs => f.api_unavailable_ms,
        }
    }
}

impl ClientFigures {
    /// `lost L of A acknowledged writes`, or that the loss is unknown (no final read).
    pub fn lost_text(&self) -> String {
        match self.lost_acked_writes {
            Some(l) => format!("lost {l} of {} acknowledged writes", self.acked_writes),
            None => format!(
                "{} acknowledged writes, loss unknown (nothing was read back)",
                self.acked_writes
            ),
        }
    }
}

/// One field of [`ClientFigures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFigure {
    /// [`ClientFigures::acked_writes`].
    AckedWrites,
    /// [`ClientFigures::lost_acked_writes`].
    LostAckedWrites,
    /// [`ClientFigures::lost_acked_percent`].
    LostAckedPercent,
    /// [`ClientFigures::write_unavailable_ms`].
    WriteUnavailableMs,
    /// [`ClientFigures::read_unavailable_ms`].
    ReadUnavailableMs,
    /// [`ClientFigures::failed_ops`].
    FailedOps,
    /// [`ClientFigures::unknown_ops`].
    UnknownOps,
}

impl ClientFigure {
    /// Every client figure, in report order.
    pub const ALL: [ClientFigure; 7] = [
        ClientFigure::AckedWrites,
        ClientFigure::LostAckedWrites,
        ClientFigure::LostAckedPercent,
        ClientFigure::WriteUnavailableMs,
        ClientFigure::ReadUnavailableMs,
        ClientFigure::FailedOps,
        ClientFigure::UnknownOps,
    ];

    /// The field's name, as in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ClientFigure::AckedWrites => "acked_writes",
            ClientFigure::LostAckedWrites => "lost_acked_writes",
            ClientFigure::LostAckedPercent => "lost_acked_percent",
            ClientFigure::WriteUnavailableMs => "write_unavailable_ms",
            ClientFigure::ReadUnavailableMs => "read_unavailable_ms",
            ClientFigure::FailedOps => "failed_ops",
            ClientFigure::UnknownOps => "unknown_ops",
        }
    }

    /// The unit of its value.
    pub fn unit(self) -> &'static str {
        match self {
            ClientFigure::WriteUnavailableMs | ClientFigure::ReadUnavailableMs => "ms",
            ClientFigure::LostAckedPercent => "%",
            ClientFigure::AckedWrites | ClientFigure::LostAckedWrites => "writes",
            ClientFigure::UnknownOps | ClientFigure::FailedOps => "operations",
        }
    }

    /// Its value in `f` (`None`: the run did not produce it).
    pub fn read(self, f: &ClientFigures) -> Option<f64> {
        match self {
            ClientFigure::WriteUnavailableMs => f.write_unavailable_ms,
            ClientFigure::ReadUnavailableMs => f.read_unavailable_ms,
            ClientFigure::AckedWrites => Some(f.acked_writes as f64),
            ClientFigure::LostAckedWrites => f.lost_acked_writes.map(|v| v as f64),
            ClientFigure::LostAckedPercent => f.lost_acked_percent,
            ClientFigure::UnknownOps => Some(f.unknown_ops as f64),
            ClientFigure::FailedOps => Some(f.failed_ops as f64),
        }
    }
}

impl std::fmt::Display for ClientFigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
            two_masters_ms: 4.0,
            rejoin_ms: Some(5.0),
            heal_ms: Some(6.0),
            tilt_events: 7,
            api_errors: Some(8),
            api_bypasses: Some(9),
            api_fault_p99_us: Some(10.0),
            api_unavailable_ms: Some(11.0),
        };
        let json = serde_json::to_value(&f).unwrap();
        for (i, fig) in Figure::ALL.into_iter().enumerate() {
            assert_eq!(fig.read(&f), Some(i as f64 + 1.0), "{fig}");
            assert_eq!(json[fig.name()].as_f64(), Some(i as f64 + 1.0), "{fig}");
        }
        assert_eq!(Figure::ApiErrors.read(&Figures::default()), None);
        assert_eq!(json.as_object().unwrap().len(), Figure::ALL.len());
    }

    #[test]
    fn every_client_figure_reads_its_own_field_and_names_it_as_json_does() {
        let f = ClientFigures {
            acked_writes: 1,
            lost_acked_writes: Some(2),
            lost_acked_percent: Some(3.0),
            write_unavailable_ms: Some(4.0),
            read_unavailable_ms: Some(5.0),
            failed_ops: 6,
            unknown_ops: 7,
        };
        let json = serde_json::to_value(&f).unwrap();
        for (i, fig) in ClientFigure::ALL.into_iter().enumerate() {
            assert_eq!(fig.read(&f), Some(i as f64 + 1.0), "{fig}");
            assert_eq!(json[fig.name()].as_f64(), Some(i as f64 + 1.0), "{fig}");
        }
        assert_eq!(json.as_object().unwrap().len(), ClientFigure::ALL.len());
    }
}
