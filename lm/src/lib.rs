//! lm crate (stub)
