//! The orchestrator: loads the engines, serves the gRPC API (tonic, with tower middleware at the
//! edge only), runs call sessions and the demo. The `ringwise` binary is its command line.

pub mod call;
pub mod config;
pub mod demo;
pub mod engines;
pub mod grpc;

pub use config::Config;
pub use engines::Engines;

/// Generated protobuf types; used only inside this crate's gRPC edge.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("ringwise.v1");
}
