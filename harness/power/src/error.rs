use std::path::PathBuf;

/// Errors from sensors and the sampler. Each names the sensor (or file) involved and reads well
/// after "failed to …".
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PowerError {
    #[error(
        "open i2c device {path}: it does not exist (is the i2c-dev module loaded and the bus enabled?)"
    )]
    DeviceMissing { path: PathBuf },
    #[error("open i2c device {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error(
        "reach {sensor}: no acknowledge at i2c address {address:#04x} (wrong address or sensor not wired)"
    )]
    Nack { sensor: String, address: u8 },
    #[error("initialise {sensor}: {detail}")]
    Init { sensor: String, detail: String },
    #[error(
        "read {sensor}: math overflow (OVF): the current exceeds the calibrated range, raise max_current_a"
    )]
    Overflow { sensor: String },
    #[error("read {sensor}: no conversion ready (CNVR) within {waited_us} µs")]
    ConversionTimeout { sensor: String, waited_us: u64 },
    #[error("read {sensor}: {detail}")]
    OutOfRange { sensor: String, detail: String },
    #[error("talk to {sensor} over i2c: {detail}")]
    Bus { sensor: String, detail: String },
    #[error("validate ina219 config field `{field}`: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("read {path}: {detail}")]
    Sysfs { path: PathBuf, detail: String },
    #[error("find rail `{rail}` under {root}: available rails are [{available}]")]
    RailNotFound {
        rail: String,
        root: PathBuf,
        available: String,
    },
    #[error("configure sampler: {reason}")]
    InvalidSampler { reason: String },
    #[error("run the sampler thread for {sensor}: it panicked")]
    SamplerPanicked { sensor: String },
}
