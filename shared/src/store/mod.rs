//! The store port of [`switchyard_core::store`], and its DynamoDB adapter ([`dynamo`]).

pub use switchyard_core::store::*;

pub mod dynamo;

pub use dynamo::DynamoStore;
