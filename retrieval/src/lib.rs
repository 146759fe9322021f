//! Customer data layer.
