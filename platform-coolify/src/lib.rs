//! platform-coolify (being built).
