//! Board temperatures sampled while a board works, beside its session on a thread of its own.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gauntlet_ssh::SshBoard;

use crate::record::TemperatureRecord;

/// Between samples: each is one short command over the board's existing SSH connection, so a
/// second costs the board next to nothing and still catches a board heating into throttling.
pub const TEMPERATURE_INTERVAL: Duration = Duration::from_secs(1);

pub struct TemperatureSampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<TemperatureRecord>,
}

impl TemperatureSampler {
    /// Samples `board` now and every `interval` until [`TemperatureSampler::stop`]. The first
    /// failure ends the sampling (a dropped connection is the session's to report); the samples
    /// taken so far and the failure are kept.
    pub fn start(board: Arc<SshBoard>, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(format!("gauntlet-thermal-{}", board.id()))
            .spawn(move || {
                let started = Instant::now();
                let mut record = TemperatureRecord {
                    interval,
                    samples: Vec::new(),
                    error: None,
                };
                loop {
                    match board.sample_temperatures() {
                        Ok(zones) => record
                            .samples
                            .push((started.elapsed().as_secs_f64(), zones)),
                        Err(e) => {
                            record.error = Some(e.to_string());
                            return record;
                        }
                    }
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return record,
                    }
                }
            })
            .expect("spawn the temperature sampler thread");
        TemperatureSampler { stop, handle }
    }

    pub fn stop(self) -> TemperatureRecord {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_else(|_| TemperatureRecord {
            interval: Duration::ZERO,
            samples: Vec::new(),
            error: Some("the temperature sampler panicked".into()),
        })
    }
}
