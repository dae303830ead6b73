//! The one error type of the crate. Every failure that reaches JavaScript is
//! thrown as an `Error` whose `code` is an errno name (`EINVAL`, `ENODEV`...)
//! or one of our own stable `ERR_VERBS_*` codes, never as a crash.

use std::borrow::Cow;
use std::fmt;

/// A failure with a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerbsError {
    /// Stable machine-readable code: an errno name or `ERR_VERBS_*`.
    pub code: Cow<'static, str>,
    /// What went wrong, naming the object or argument involved.
    pub message: String,
    /// The errno behind the failure, when there is one.
    pub errno: Option<i32>,
}

/// Result of every fallible operation in this crate.
pub type Result<T> = std::result::Result<T, VerbsError>;

/// Code of an operation on an object that `close()` already released.
pub const ERR_CLOSED: &str = "ERR_VERBS_CLOSED";
/// Code of an argument of the wrong JavaScript type.
pub const ERR_INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";
/// Code of a Rust panic caught at the Node-API boundary (a bug of ours).
pub const ERR_INTERNAL: &str = "ERR_VERBS_INTERNAL";

impl VerbsError {
    /// An error with one of our own codes.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        VerbsError { code: Cow::Borrowed(code), message: message.into(), errno: None }
    }

    /// An error from an errno returned by rdma-core or the kernel.
    pub fn from_errno(errno: i32, what: impl fmt::Display) -> Self {
        let name = errno_name(errno);
        VerbsError {
            code: Cow::Borrowed(name),
            message: format!("{what}: {name} ({})", std::io::Error::from_raw_os_error(errno)),
            errno: Some(errno),
        }
    }

    /// `EINVAL` for a value the caller got wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        VerbsError { code: Cow::Borrowed("EINVAL"), message: message.into(), errno: Some(libc::EINVAL) }
    }

    /// `ERR_VERBS_CLOSED` for an object used after `close()`.
    pub fn closed(what: &str) -> Self {
        Self::new(ERR_CLOSED, format!("{what} is closed"))
    }

    /// `ERR_INVALID_ARG_TYPE` naming the argument and what it must be.
    pub fn arg_type(name: &str, expected: &str) -> Self {
        Self::new(ERR_INVALID_ARG_TYPE, format!("{name} must be {expected}"))
    }
}

impl fmt::Display for VerbsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}

impl std::error::Error for VerbsError {}

/// Turns the 0-or-errno convention of the C shim into a `Result`.
pub fn check(rc: i32, what: impl fmt::Display) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(VerbsError::from_errno(rc.abs(), what))
    }
}

/// The symbolic name of an errno value, or `EUNKNOWN`.
pub fn errno_name(errno: i32) -> &'static str {
    use libc::*;
    match errno {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        EMFILE => "EMFILE",
        ENOSPC => "ENOSPC",
        ERANGE => "ERANGE",
        ENOSYS => "ENOSYS",
        ENODATA => "ENODATA",
        ETIME => "ETIME",
        EPROTO => "EPROTO",
        EOVERFLOW => "EOVERFLOW",
        EOPNOTSUPP => "EOPNOTSUPP",
        EAFNOSUPPORT => "EAFNOSUPPORT",
        EADDRINUSE => "EADDRINUSE",
        EADDRNOTAVAIL => "EADDRNOTAVAIL",
        ENETDOWN => "ENETDOWN",
        ENETUNREACH => "ENETUNREACH",
        ECONNABORTED => "ECONNABORTED",
        ECONNRESET => "ECONNRESET",
        ENOBUFS => "ENOBUFS",
        EISCONN => "EISCONN",
        ENOTCONN => "ENOTCONN",
        ETIMEDOUT => "ETIMEDOUT",
        ECONNREFUSED => "ECONNREFUSED",
        EHOSTDOWN => "EHOSTDOWN",
        EHOSTUNREACH => "EHOSTUNREACH",
        EALREADY => "EALREADY",
        EINPROGRESS => "EINPROGRESS",
        _ => "EUNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_errors_carry_the_errno_name_as_code() {
        let error = VerbsError::from_errno(libc::ENODEV, "open rxe9");
        assert_eq!(error.code, "ENODEV");
        assert_eq!(error.errno, Some(libc::ENODEV));
        assert!(error.message.starts_with("open rxe9: ENODEV"));
    }

    #[test]
    fn check_accepts_zero_and_maps_negative_errno() {
        assert!(check(0, "x").is_ok());
        assert_eq!(check(-libc::EAGAIN, "x").unwrap_err().code, "EAGAIN");
    }
}
