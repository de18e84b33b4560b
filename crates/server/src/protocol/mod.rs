//! The wire protocols of the services, as botocore's models name them.

pub mod query;
pub mod xml;
