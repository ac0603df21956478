//! Board drivers: one per board kind, all in [`DRIVERS`]. A driver opens its board into a
//! [`DeviceSession`]; what only some boards have (a health check, thermal zones, an emulator to
//! wait for, an agent whose exit explains a dropped link) are default methods that those boards'
//! sessions override. What the device itself can take — request size, requests in flight, how
//! its model arrives — it declares in its hello ([`gauntlet_wire::Capabilities`]).

use std::time::Duration;

use gauntlet_mcu::{Firmware, McuBoard};
use gauntlet_spec::{Board, BoardKind};

use crate::connect::{
    ConnectError, LocalDriver, ProbeDriver, ProbeRs, QemuDriver, SerialDriver, SshDriver, TcpDriver,
};
use crate::link::{Link, LinkError};
use crate::power::PowerMonitor;
use crate::thermal::TemperatureSampler;

/// Opens boards of one kind.
pub trait BoardDriver: Sync {
    fn kind(&self) -> BoardKind;

    /// Boards whose firmware has the model built in: the firmware's board support, and then
    /// every build is its own image and its own boot. `None` for boards that run the agent.
    fn firmware(&self, _board: &Board) -> Option<Result<McuBoard, String>> {
        None
    }

    /// What identifies the hardware behind `board`, so two runs never share it; `None` for
    /// boards the run starts itself.
    fn lock_key(&self, _board: &Board) -> Option<String> {
        None
    }

    /// The board's power sensor, sampled beside the session; `Ok(None)` when it has none.
    fn power(&self, board: &Board) -> Result<Option<PowerMonitor>, String> {
        PowerMonitor::start(board)
    }

    /// Opens a session: on `image` for boards with [`BoardDriver::firmware`], else `None`.
    fn open(
        &self,
        board: &Board,
        image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError>;
}

/// An open board: its link, and what the runner may ask about it.
pub trait DeviceSession {
    fn link(&mut self) -> &mut Link;

    /// The shared secret the device expects in `Hello` (agents reachable over TCP).
    fn token(&self) -> Option<String> {
        None
    }

    /// A link error as the board's failure reason, with whatever the board can add about its
    /// cause (an agent's exit status and stderr, a dropped SSH connection).
    fn diagnose(&mut self, board: &str, error: &LinkError) -> String {
        error.reason(board)
    }

    /// After `Shutdown`: waits for what must end with the session (an emulator) and checks it.
    fn finish(&mut self, _timeout: Duration) -> Result<(), ConnectError> {
        Ok(())
    }

    /// Ends this session's agent process and starts a fresh one on a new link, for a replay
    /// independent of the process before it (its memory layout, the core it settled on). `None`,
    /// touching nothing, where the run did not start the agent: one behind TCP or a serial line
    /// outlives the session, and firmware has no process to restart.
    fn restart_agent(&mut self, _timeout: Duration) -> Option<Result<(), ConnectError>> {
        None
    }

    /// The health check taken before any work.
    fn health(&self) -> Option<gauntlet_ssh::Health> {
        None
    }

    /// What deploying the agent sent or found cached.
    fn deployment(&self) -> Option<gauntlet_ssh::Deployment> {
        None
    }

    /// Starts sampling the board's temperatures beside the session, where it can be read.
    fn thermal(&self) -> Option<TemperatureSampler> {
        None
    }
}

/// Every board kind's driver; a rig's board is opened by the one of its kind.
pub const DRIVERS: &[&dyn BoardDriver] = &[
    &LocalDriver,
    &SshDriver(BoardKind::LinuxSsh),
    &SshDriver(BoardKind::Jetson),
    &TcpDriver,
    &SerialDriver,
    &QemuDriver,
    &ProbeDriver { wiring: &ProbeRs },
];

/// The driver for `board` among `drivers`.
pub fn driver_for<'d>(
    drivers: &[&'d dyn BoardDriver],
    board: &Board,
) -> Result<&'d dyn BoardDriver, ConnectError> {
    drivers
        .iter()
        .find(|d| d.kind() == board.kind)
        .copied()
        .ok_or_else(|| ConnectError::NoDriver {
            board: board.id.clone(),
            kind: board.kind.name(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_kind_has_exactly_one_driver() {
        for (name, kind) in BoardKind::ALL {
            let count = DRIVERS.iter().filter(|d| d.kind() == kind).count();
            assert_eq!(count, 1, "board kind `{name}` has {count} drivers");
        }
    }
}
