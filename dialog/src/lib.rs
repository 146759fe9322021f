//! Dialogue manager.
