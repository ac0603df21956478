//! The agent's runtimes live in `gauntlet-runtime` (shared with the host-side model check); the
//! names stay reachable here.

pub use gauntlet_runtime::*;
