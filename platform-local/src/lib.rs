//! platform-local (being built).
