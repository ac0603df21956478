//! Runs a validated scenario on a rig: plans the work, drives one session per board, replays the
//! dataset through each model build, records raw measurements, and analyses them into results.

pub mod analyze;
pub mod connect;
pub mod driver;
pub mod events;
pub mod fence;
pub mod link;
pub mod lock;
pub mod machine;
pub mod mcu;
pub mod plan;
pub mod power;
pub mod record;
pub mod session;
mod task_analysis;
pub mod testing;
pub mod thermal;

pub use analyze::{RunMeta, analyze};
pub use driver::{BoardDriver, DRIVERS, DeviceSession};
pub use events::{Event, EventSink};
pub use fence::{BoardFence, Unfenced};
pub use plan::{Plan, PlanError, PlannedBuild, plan};
pub use record::*;
pub use session::{run_plan, run_plan_fenced, run_plan_with};
pub use task_analysis::scores as anomaly_scores;
