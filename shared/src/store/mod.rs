//! The store port of [`switchyard_core::store`], and its DynamoDB adapter ([`dynamo`]).

pub use switchyard_aws::dynamo;
pub use switchyard_aws::dynamo::DynamoStore;
pub use switchyard_core::store::*;
