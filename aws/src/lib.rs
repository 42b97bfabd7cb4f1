//! switchyard-aws: the AWS adapters of the ports in [`switchyard_core`]. [`dynamo`] keeps
//! every key, item layout and compression rule of the one table; [`lambda`] fans out with
//! asynchronous invokes; [`secrets`] resolves `*_SECRET_REF` variables from Secrets Manager;
//! [`emf`] writes metrics as CloudWatch Embedded Metric Format lines; [`sdk`] builds the SDK
//! clients with timeouts.

#![warn(missing_docs)]

// The core modules the adapters implement, under the names the adapters use.
use switchyard_core::{event, hooks, manifest, settings, store};

pub mod dynamo;
pub mod emf;
pub mod lambda;
pub mod sdk;
pub mod secrets;

pub use dynamo::DynamoStore;
pub use lambda::LambdaFanout;
