//! The typed vocabulary of gates and rejections. Each serialises to the string `results.json` has
//! always held, so files written before these types existed read back unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// What a gate measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Accuracy,
    MacroF1,
    LatencyP50,
    LatencyP90,
    LatencyP99,
    LatencyMean,
    AgreementLabel,
    EnergyPerInference,
    PeakRam,
    Flash,
    RocAuc,
    PrAuc,
    F1AtThreshold,
    PrecisionAtThreshold,
    RecallAtThreshold,
    FalseAlarmsPerHour,
    EventsDetected,
    DetectionDelay,
    Rmse,
    Mae,
    R2,
    Mape,
    MaxAbsError,
    Skill,
    AgreementSpearman,
    AgreementDecisions,
    AgreementRmseChange,
}

impl Metric {
    /// Spelling used in scenario files, `results.json` and reports.
    pub const ALL: [(&'static str, Metric); 27] = [
        ("accuracy", Metric::Accuracy),
        ("macro_f1", Metric::MacroF1),
        ("latency.p50", Metric::LatencyP50),
        ("latency.p90", Metric::LatencyP90),
        ("latency.p99", Metric::LatencyP99),
        ("latency.mean", Metric::LatencyMean),
        ("agreement.label", Metric::AgreementLabel),
        ("energy_per_inference", Metric::EnergyPerInference),
        ("peak_ram", Metric::PeakRam),
        ("flash", Metric::Flash),
        ("roc_auc", Metric::RocAuc),
        ("pr_auc", Metric::PrAuc),
        ("f1_at_threshold", Metric::F1AtThreshold),
        ("precision_at_threshold", Metric::PrecisionAtThreshold),
        ("recall_at_threshold", Metric::RecallAtThreshold),
        ("false_alarms_per_hour", Metric::FalseAlarmsPerHour),
        ("events_detected", Metric::EventsDetected),
        ("detection_delay_s", Metric::DetectionDelay),
        ("rmse", Metric::Rmse),
        ("mae", Metric::Mae),
        ("r2", Metric::R2),
        ("mape", Metric::Mape),
        ("max_abs_error", Metric::MaxAbsError),
        ("skill", Metric::Skill),
        ("agreement.spearman", Metric::AgreementSpearman),
        ("agreement.decisions", Metric::AgreementDecisions),
        ("agreement.rmse_change", Metric::AgreementRmseChange),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .expect("every metric is listed in ALL")
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// Which way is better for the task metrics: `Some(true)` when higher is, `Some(false)` when
    /// lower is; `None` for the older metrics, whose gates have always said so themselves.
    pub fn higher_is_better(self) -> Option<bool> {
        use Metric::*;
        match self {
            RocAuc | PrAuc | F1AtThreshold | PrecisionAtThreshold | RecallAtThreshold
            | EventsDetected | R2 | Skill | AgreementSpearman | AgreementDecisions => Some(true),
            FalseAlarmsPerHour | DetectionDelay | Rmse | Mae | Mape | MaxAbsError
            | AgreementRmseChange => Some(false),
            _ => None,
        }
    }

    /// The task whose figures the metric reads, for the task metrics.
    pub fn task(self) -> Option<&'static str> {
        use Metric::*;
        match self {
            RocAuc | PrAuc | F1AtThreshold | PrecisionAtThreshold | RecallAtThreshold
            | FalseAlarmsPerHour | EventsDetected | DetectionDelay | AgreementDecisions => {
                Some("anomaly")
            }
            Rmse | Mae | R2 | Mape | MaxAbsError | Skill | AgreementRmseChange => {
                Some("regression")
            }
            _ => None,
        }
    }

    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::LatencyP50 | Metric::LatencyP90 | Metric::LatencyP99 | Metric::LatencyMean
        )
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Metric::from_name(&name).ok_or_else(|| D::Error::custom(format!("unknown metric `{name}`")))
    }
}

/// Which side of its threshold a gate's figure must stay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    AtMost,
    AtLeast,
}

impl Comparison {
    /// The sign a passing figure has towards its threshold: `≤` or `≥`.
    pub fn passing_sign(self) -> &'static str {
        match self {
            Comparison::AtMost => "≤",
            Comparison::AtLeast => "≥",
        }
    }

    /// The sign a failing figure has towards its threshold: `>` or `<`.
    pub fn failing_sign(self) -> &'static str {
        match self {
            Comparison::AtMost => ">",
            Comparison::AtLeast => "<",
        }
    }
}

/// What a relative gate's threshold was resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineKind {
    /// The scenario's reference build on the same board.
    Reference,
    /// The build promoted for the board class, from an earlier run.
    Champion,
}

impl BaselineKind {
    pub fn name(self) -> &'static str {
        match self {
            BaselineKind::Reference => "reference",
            BaselineKind::Champion => "champion",
        }
    }
}

/// Why a build has no figures: what the board or the harness refused it for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    VersionMismatch,
    Unauthorized,
    /// The conversation went out of step (a request the device did not expect, or an answer the
    /// harness did not).
    Protocol,
    Checksum,
    NoModel,
    UnsupportedOperator,
    ModelLoad,
    ShapeMismatch,
    Inference,
    OutOfMemory,
    Internal,
    RuntimeUnavailable,
    ProviderUnavailable,
    /// The board cannot run the build at all (e.g. a runtime its kind never has).
    Unsupported,
    /// The MCU compiler refused the model.
    Compile,
    /// The compiled model does not fit the MCU's memory.
    DoesNotFit,
    /// The board failed; the build was not judged.
    Infrastructure,
}

impl RejectionKind {
    const ALL: [(&'static str, RejectionKind); 17] = [
        ("VersionMismatch", RejectionKind::VersionMismatch),
        ("Unauthorized", RejectionKind::Unauthorized),
        ("Protocol", RejectionKind::Protocol),
        ("Checksum", RejectionKind::Checksum),
        ("NoModel", RejectionKind::NoModel),
        ("UnsupportedOperator", RejectionKind::UnsupportedOperator),
        ("ModelLoad", RejectionKind::ModelLoad),
        ("ShapeMismatch", RejectionKind::ShapeMismatch),
        ("Inference", RejectionKind::Inference),
        ("OutOfMemory", RejectionKind::OutOfMemory),
        ("Internal", RejectionKind::Internal),
        ("RuntimeUnavailable", RejectionKind::RuntimeUnavailable),
        ("ProviderUnavailable", RejectionKind::ProviderUnavailable),
        ("Unsupported", RejectionKind::Unsupported),
        ("Compile", RejectionKind::Compile),
        ("DoesNotFit", RejectionKind::DoesNotFit),
        ("Infrastructure", RejectionKind::Infrastructure),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .expect("every rejection kind is listed in ALL")
    }

    /// Reads a recorded kind. Files written before this type held the device error's debug text,
    /// payload included (`UnsupportedOperator { op: "Foo" }`); the name before the payload decides.
    pub fn from_recorded(text: &str) -> Option<RejectionKind> {
        let name = text.split([' ', '{', '(']).next().unwrap_or(text);
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

impl std::fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for RejectionKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RejectionKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RejectionKind::from_recorded(&text)
            .ok_or_else(|| D::Error::custom(format!("unknown rejection kind `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_kinds_serialise_to_the_strings_results_json_has_always_held() {
        assert_eq!(
            serde_json::to_string(&Metric::LatencyP99).unwrap(),
            "\"latency.p99\""
        );
        assert_eq!(
            serde_json::to_string(&Comparison::AtLeast).unwrap(),
            "\"at-least\""
        );
        assert_eq!(
            serde_json::to_string(&BaselineKind::Champion).unwrap(),
            "\"champion\""
        );
        for (name, metric) in Metric::ALL {
            let text = serde_json::to_string(&metric).unwrap();
            assert_eq!(text, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Metric>(&text).unwrap(), metric);
        }
        for (name, kind) in RejectionKind::ALL {
            let back: RejectionKind = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn a_rejection_kind_recorded_with_its_payload_reads_back() {
        let old = r#""UnsupportedOperator { op: \"NonMaxSuppression\" }""#;
        assert_eq!(
            serde_json::from_str::<RejectionKind>(old).unwrap(),
            RejectionKind::UnsupportedOperator
        );
        assert_eq!(
            serde_json::from_str::<RejectionKind>(r#""VersionMismatch { device: 3 }""#).unwrap(),
            RejectionKind::VersionMismatch
        );
        let err = serde_json::from_str::<Metric>("\"latency.p95\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown metric `latency.p95`"),
            "{err}"
        );
    }
}
