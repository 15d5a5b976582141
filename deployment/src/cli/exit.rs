//! Exit codes scripts can rely on (also printed by `--help`).

use crate::error::{ErrorClass, ServiceError};

/// Success.
pub const OK: u8 = 0;
/// An unexpected error.
pub const INTERNAL: u8 = 1;
/// Invalid usage or input.
pub const INVALID_INPUT: u8 = 2;
/// No such bot.
pub const NOT_FOUND: u8 = 3;
/// The bot's state forbids it.
pub const CONFLICT: u8 = 4;
/// Temporarily unavailable; retry later.
pub const UNAVAILABLE: u8 = 5;
/// A configuration problem.
pub const CONFIGURATION: u8 = 6;
/// The platform refused the bot.
pub const REFUSED: u8 = 7;

/// The exit code for an error class.
pub fn for_class(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::InvalidInput => INVALID_INPUT,
        ErrorClass::NotFound => NOT_FOUND,
        ErrorClass::Conflict => CONFLICT,
        ErrorClass::Unavailable => UNAVAILABLE,
        ErrorClass::Configuration => CONFIGURATION,
        ErrorClass::Refused => REFUSED,
        ErrorClass::Internal => INTERNAL,
    }
}

/// The exit code for an error.
pub fn for_error(error: &ServiceError) -> u8 {
    for_class(error.class())
}
