//! Why a storage call failed, typed once for every caller: each store's own
//! answers (object_store's variants, Azure's 409 and 412 alike, a local
//! file's `io::Error`) become one [`Failure`], so a caller asks
//! `is_not_found`, `is_conflict` or `is_transient` instead of matching on
//! what a particular backend says.

use std::error::Error as _;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    /// A file on local disk outside the store: one being uploaded, or the
    /// target of a download.
    #[error("{}: {source}", path.display())]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store's answer about `location` (the store's URL and the key).
    #[error("{location}: {reason}")]
    Store {
        location: String,
        failure: Failure,
        reason: String,
    },
}

/// What kind of failure, for a caller that acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing is stored under the key.
    NotFound,
    /// A create-only put found the key taken, or a conditional update found
    /// another version (Azure answers 409 or 412; a local folder's link
    /// finds the file).
    Conflict,
    /// The store did not answer, or not for good (a connection refused or
    /// reset, a timeout, a server error after object_store's own retries):
    /// the same call may succeed later.
    Transient,
    /// Refused for good: no permission, a key the store cannot hold, a
    /// misconfigured store.
    Other,
}

impl StorageError {
    pub fn failure(&self) -> Failure {
        match self {
            StorageError::Url { .. } => Failure::Other,
            StorageError::Local { source, .. } => io_failure(source),
            StorageError::Store { failure, .. } => *failure,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.failure() == Failure::NotFound
    }

    pub fn is_conflict(&self) -> bool {
        self.failure() == Failure::Conflict
    }

    pub fn is_transient(&self) -> bool {
        self.failure() == Failure::Transient
    }

    /// `error` from the store about `location`.
    pub(super) fn store(location: String, error: object_store::Error) -> Self {
        StorageError::Store {
            location,
            failure: failure_of(&error),
            reason: error.to_string(),
        }
    }

    /// `error` from a writer on the store (object_store's `BufWriter`
    /// answers in `io::Error`s that carry the store's error).
    pub(super) fn store_io(location: String, error: std::io::Error) -> Self {
        let failure = match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<object_store::Error>())
        {
            Some(inner) => failure_of(inner),
            None => io_failure(&error),
        };
        StorageError::Store {
            location,
            failure,
            reason: error.to_string(),
        }
    }
}

/// The one place object_store's answers are sorted.
fn failure_of(error: &object_store::Error) -> Failure {
    use object_store::Error;
    match error {
        Error::NotFound { .. } => Failure::NotFound,
        Error::AlreadyExists { .. } | Error::Precondition { .. } => Failure::Conflict,
        // A remote store's untyped answer is a request that failed (no
        // connection, a timeout, a 5xx after object_store's retries); a
        // local file's error says what it is.
        Error::Generic { store, .. } if *store != "LocalFileSystem" => Failure::Transient,
        Error::Generic { .. } => source_io_error(error).map_or(Failure::Other, io_failure),
        Error::JoinError { .. } => Failure::Transient,
        _ => Failure::Other,
    }
}

/// The first `io::Error` among `error`'s sources.
fn source_io_error(error: &object_store::Error) -> Option<&std::io::Error> {
    let mut cause = error.source();
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = current.source();
    }
    None
}

fn io_failure(error: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => Failure::NotFound,
        ErrorKind::AlreadyExists => Failure::Conflict,
        ErrorKind::Interrupted
        | ErrorKind::TimedOut
        | ErrorKind::WouldBlock
        | ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotConnected
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => Failure::Transient,
        _ => Failure::Other,
    }
}
