//! The options object: `kepmlog_options_new`, one setter per field, `kepmlog_options_free`.
//! Split from `lib.rs` by concern; the conventions (and the helpers) are that file's.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use kepmlog_core::{Options, Overflow};

use crate::args::{args_arg, str_arg};
use crate::status::kepmlog_status::*;
use crate::status::{guard, kepmlog_status, Failure};
use crate::types::kepmlog_options;

/// Creates an options object with every field unset (job defaults). Free it with
/// `kepmlog_options_free`; `kepmlog_logger_new` does not take ownership.
///
/// # Safety
/// `out` is NULL or points to writable storage for one pointer.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_new(out: *mut *mut kepmlog_options) -> kepmlog_status {
    guard(|| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let handle = Box::into_raw(Box::new(kepmlog_options {
            inner: Options::default(),
        }));
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Frees an options object and sets `*options` to NULL, so a second call is a no-op.
/// `kepmlog_options_free(NULL)` and a pointer to NULL are no-ops too.
///
/// # Safety
/// `options` is NULL or points to NULL or to a handle from `kepmlog_options_new`.
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_free(
    options: *mut *mut kepmlog_options,
) -> kepmlog_status {
    guard(|| {
        if options.is_null() {
            return Ok(());
        }
        // SAFETY: non-NULL pointer to a handle slot per the contract.
        let handle = unsafe { std::ptr::replace(options, std::ptr::null_mut()) };
        if !handle.is_null() {
            // SAFETY: the handle came from Box::into_raw in kepmlog_options_new and the slot
            // now holds NULL, so this is the only free through it.
            drop(unsafe { Box::from_raw(handle) });
        }
        Ok(())
    })
}

/// Copies a string option into the options object.
///
/// # Safety
/// As the `kepmlog_options_set_*` string setters.
pub(crate) unsafe fn set_string(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
    what: &str,
    set: impl FnOnce(&mut Options, &str),
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        // SAFETY: forwarded contract.
        let v = unsafe { str_arg(value, what) }?;
        set(&mut o.inner, v);
        Ok(())
    })
}

/// `MetaData.Source`: the tool's name as shown in the operator's logs. Default: the
/// executable's name.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_source(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "source", |o, v| {
            o.source = Some(v.to_string())
        })
    }
}

/// `MetaData.Category` used when a log call passes NULL or `""`. Default `"General"`.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_default_category(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "default category", |o, v| {
            o.default_category = v.to_string()
        })
    }
}

/// The job id. Default: the `KEEPER_JOB_ID` environment variable set by the agent.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_job_id(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "job id", |o, v| {
            o.job_id = Some(v.to_string())
        })
    }
}

/// Short name of the binary in the MQTT client id. Default: the executable's file name.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_token(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "token", |o, v| {
            o.token = Some(v.to_string())
        })
    }
}

/// Agent HTTPS API base, e.g. `"https://127.0.0.1:6889"`. Default: `--keeper-api-base`
/// in the arguments, else `https://127.0.0.1:6889`.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_api_base(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "api base", |o, v| {
            o.api_base = Some(v.to_string())
        })
    }
}

/// PEM file of CAs to trust for the agent's API and broker. Without it, certificate checks
/// are skipped, and only for loopback addresses.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_ca_bundle(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "CA bundle path", |o, v| {
            o.ca_bundle = Some(v.into())
        })
    }
}

/// Topic of `kepmlog_event`. Default `Jobs/{jobId}/events`. Must be in the job's
/// `mqttTopics.allowedPublications`.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_event_topic(
    options: Option<&mut kepmlog_options>,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "event topic", |o, v| {
            o.event_topic = Some(v.to_string())
        })
    }
}

/// Broker address; when set, Plugin Settings discovery is skipped.
///
/// # Safety
/// `options` is a live options handle (or NULL); `host` is NULL or a NUL-terminated string.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_broker(
    options: Option<&mut kepmlog_options>,
    host: *const c_char,
    port: u16,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        // SAFETY: forwarded contract.
        let host = unsafe { str_arg(host, "broker host") }?;
        kepmlog_core::check_broker(host, port)?;
        o.inner.broker = Some((host.to_string(), port));
        Ok(())
    })
}

/// Records the queue holds before the overflow policy applies (default 65536, at least 1).
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_queue_capacity(
    options: Option<&mut kepmlog_options>,
    capacity: usize,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        kepmlog_core::check_queue_capacity(capacity)?;
        o.inner.queue_capacity = capacity;
        Ok(())
    })
}

/// What logging does when the queue is full: `KEPMLOG_OVERFLOW_DROP` (default) or
/// `KEPMLOG_OVERFLOW_BLOCK`, which waits up to `block_timeout_ms` for room.
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_overflow(
    options: Option<&mut kepmlog_options>,
    policy: c_int,
    block_timeout_ms: u64,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        o.inner.overflow = match policy {
            0 => Overflow::Drop,
            1 => Overflow::Block(Duration::from_millis(block_timeout_ms)),
            _ => {
                return Err(Failure::new(
                    KEPMLOG_ERR_INVALID_ARGUMENT,
                    format!("overflow policy {policy}: pass KEPMLOG_OVERFLOW_DROP or KEPMLOG_OVERFLOW_BLOCK"),
                ))
            }
        };
        Ok(())
    })
}

/// Timeout of the Plugin Settings request (default 3000 ms).
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_settings_timeout(
    options: Option<&mut kepmlog_options>,
    timeout_ms: u64,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        o.inner.settings_timeout = Duration::from_millis(timeout_ms);
        Ok(())
    })
}

/// How long `kepmlog_logger_free` of a logger that was not shut down may wait to deliver
/// what is queued (default 5000 ms).
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_drop_timeout(
    options: Option<&mut kepmlog_options>,
    timeout_ms: u64,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        o.inner.drop_timeout = Duration::from_millis(timeout_ms);
        Ok(())
    })
}

/// The process arguments to read `--keeper-api-base` and the executable name from (pass
/// main's `argc`, `argv`). Default: the process's own arguments.
///
/// # Safety
/// `options` is a live options handle (or NULL); `argv` is NULL or holds `argc` pointers to
/// NUL-terminated strings. The strings are copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_args(
    options: Option<&mut kepmlog_options>,
    argc: c_int,
    argv: *const *const c_char,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        // SAFETY: forwarded contract.
        o.inner.args = unsafe { args_arg(argc, argv) }?;
        Ok(())
    })
}

/// Whether the library prints its own diagnostics on stderr (`kepmlog: ...`). Default true.
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_stderr_diagnostics(
    options: Option<&mut kepmlog_options>,
    enabled: bool,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        o.inner.stderr_diagnostics = enabled;
        Ok(())
    })
}
