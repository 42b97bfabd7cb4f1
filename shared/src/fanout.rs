//! The fan-out port of [`switchyard_core::fanout`], and its Lambda adapter.

pub use switchyard_aws::lambda::LambdaFanout;
pub use switchyard_core::fanout::*;
