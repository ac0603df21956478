//! The Gauntlet Linux agent: runs models on a board (Raspberry Pi, Jetson, or the host itself)
//! on behalf of the harness.

pub mod facts;
pub mod machine;
pub mod runtime;
pub mod serve;
