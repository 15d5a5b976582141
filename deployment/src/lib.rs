//! deployment (being built).
