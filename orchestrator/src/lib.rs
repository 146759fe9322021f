//! The orchestrator: loads the engines, serves the gRPC API (tonic, with tower middleware at the
//! edge only), runs call sessions and the demo. The `ringwise` binary is its command line.

pub mod app;
pub mod auth;
pub mod callee;
pub mod campaign;
pub mod config;
pub mod demo;
pub mod dialer;
pub mod ears;
pub mod edge;
pub mod engines;
pub mod evaluate;
pub mod experiment;
pub mod grading;
pub mod grpc;
pub mod learn;
pub mod metrics;
pub mod records;
pub mod session;
pub mod simlines;
pub mod transport;

pub use config::Config;
pub use engines::Engines;

/// Generated protobuf types; used only inside this crate's gRPC edge.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("ringwise.v1");

    /// The API's file descriptor set, for the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("ringwise_descriptor");
}
