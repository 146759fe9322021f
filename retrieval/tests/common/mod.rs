//! Test support shared by the retrieval crate's integration tests.

pub mod qdrant_server;
