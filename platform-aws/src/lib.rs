//! platform-aws (being built).
