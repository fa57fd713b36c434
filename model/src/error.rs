//! One error type for everything a user can get wrong: a single line of text that
//! names the file (when there is one) and the problem. The command line prints it and
//! exits with status 2.

use std::fmt;
use std::path::Path;

/// A one-line, user-facing error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error from any message; line breaks are folded so it stays one line.
    pub fn new(msg: impl Into<String>) -> Self {
        let msg: String = msg.into();
        Error(msg.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The same error, prefixed with the file it is about.
    pub fn in_file(self, path: &Path) -> Self {
        Error(format!("{}: {}", path.display(), self.0))
    }

    /// The message, without a file prefix added by the caller.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `bail!("...")` returns an [`Error`] built with `format!`.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err(::core::convert::From::from($crate::Error::new(format!($($t)*)))) };
}

/// Adds a file prefix to the error of a result.
pub trait InFile<T> {
    fn in_file(self, path: &Path) -> Result<T>;
}

impl<T> InFile<T> for Result<T> {
    fn in_file(self, path: &Path) -> Result<T> {
        self.map_err(|e| e.in_file(path))
    }
}
