//! What a failed libqb call means: its errno by name, and what libcpg turns it into.

/// Linux errno names for the values libqb returns (x86-64 numbering).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        32 => "EPIPE",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        42 => "ENOMSG",
        52 => "EBADE",
        62 => "ETIME",
        74 => "EBADMSG",
        75 => "EOVERFLOW",
        90 => "EMSGSIZE",
        95 => "ENOTSUP",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        107 => "ENOTCONN",
        108 => "ESHUTDOWN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        7 => "E2BIG",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// corosync `common_lib/error_conversion.c::qb_to_cs_error`: what libcpg returns for a
/// failed libqb call (ipc.md §4.8).
pub fn qb_to_cs_error(errno: i32) -> &'static str {
    match errno {
        9 => "CS_ERR_BAD_HANDLE",
        12 => "CS_ERR_NO_MEMORY",
        42 | 105 | 110 | 11 => "CS_ERR_TRY_AGAIN",
        52 => "CS_ERR_FAILED_OPERATION",
        62 => "CS_ERR_TIMEOUT",
        22 => "CS_ERR_INVALID_PARAM",
        16 => "CS_ERR_BUSY",
        13 => "CS_ERR_ACCESS",
        75 => "CS_ERR_NAME_TOO_LONG",
        17 => "CS_ERR_EXIST",
        28 => "CS_ERR_NO_SPACE",
        4 => "CS_ERR_INTERRUPT",
        2 | 19 => "CS_ERR_NOT_EXIST",
        38 | 95 => "CS_ERR_NOT_SUPPORTED",
        74 => "CS_ERR_MESSAGE_ERROR",
        90 | 7 => "CS_ERR_TOO_BIG",
        _ => "CS_ERR_LIBRARY",
    }
}
