//! The hook bus of [`switchyard_core::hooks`], and switchyard's own metrics on it ([`emf`]).

pub use switchyard_aws::emf;
pub use switchyard_core::hooks::*;
