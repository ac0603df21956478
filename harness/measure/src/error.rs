use thiserror::Error;

/// Why a measurement could not be computed. Messages read after "failed to …".
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MeasureError {
    #[error("{what}: no samples{detail}")]
    Empty { what: &'static str, detail: String },
    #[error("{what}: sample {index} is {value}, not a finite number")]
    NonFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("{what}: sample {index} is {value}, but the baseline must be positive")]
    NotPositive {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },
    #[error("{what}: label {label} at row {index} is outside 0..{n_classes}")]
    LabelOutOfRange {
        what: &'static str,
        index: usize,
        label: u32,
        n_classes: usize,
    },
    #[error("{what}: option `{field}` {reason}")]
    InvalidOption {
        what: &'static str,
        field: &'static str,
        reason: String,
    },
}

/// Rejects confidences outside (0, 1), where an interval means nothing.
pub(crate) fn check_confidence(what: &'static str, confidence: f64) -> Result<(), MeasureError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(MeasureError::InvalidOption {
            what,
            field: "confidence",
            reason: format!("is {confidence}, must lie strictly between 0 and 1"),
        })
    }
}

/// Rejects NaN and infinities, which would silently poison every statistic downstream.
pub(crate) fn check_finite(
    what: &'static str,
    samples: &[f64],
    offset: usize,
) -> Result<(), MeasureError> {
    match samples.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(MeasureError::NonFinite {
            what,
            index: i + offset,
            value: samples[i],
        }),
        None => Ok(()),
    }
}
