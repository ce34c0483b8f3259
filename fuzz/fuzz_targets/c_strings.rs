//! The C ABI's string entry points (ffi/src, built as an rlib by fuzz/ffi-rlib) with arbitrary
//! byte strings: cut at the first NUL as C would see them, invalid UTF-8 included, or NULL.
//!
//! Every option setter that takes a string runs on a fresh options handle; some inputs then
//! create a logger from those options (always with a broker on an unused loopback port,
//! stderr diagnostics off, nothing written to stderr) and shut it down at once. The log calls
//! and events go to one logger per process, made the same way, whose queue fills up and
//! stays full (the broker never answers): the record is checked and built, then dropped.
//!
//! Invariants: no crash and no panic (a panic would abort under libFuzzer before the export's
//! guard turned it into `KEPMLOG_ERR_PANIC`); every status is one of those documented for the
//! call, and follows from the input where the header says so (NULL: `NULL_ARGUMENT`, invalid
//! UTF-8: `INVALID_UTF8`, a level outside 0..=5: `INVALID_LEVEL`); `kepmlog_last_error()` is
//! a UTF-8 C string, empty after `KEPMLOG_OK` and not after a failure; `kepmlog_status_name`
//! knows every status.
#![no_main]

use std::ffi::{c_char, c_int, CStr, CString};
use std::net::TcpListener;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use kepmlog_ffi::kepmlog_status::{self, *};
use kepmlog_ffi::*;

#[derive(Arbitrary, Debug)]
struct Input {
    source: Option<Vec<u8>>,
    job_id: Option<Vec<u8>>,
    token: Option<Vec<u8>>,
    api_base: Option<Vec<u8>>,
    broker: Option<Vec<u8>>,
    broker_port: u16,
    event_topic: Option<Vec<u8>>,
    fallback_name: Option<Vec<u8>>,
    create: bool,
    level: c_int,
    category: Option<Vec<u8>>,
    message: Option<Vec<u8>>,
    correlation_id: Option<Vec<u8>>,
    context: Option<Vec<u8>>,
    event: Option<Vec<u8>>,
}

/// A C string argument: the bytes up to the first NUL, or NULL.
struct Arg {
    owned: Option<CString>,
}

impl Arg {
    fn new(bytes: &Option<Vec<u8>>) -> Arg {
        let owned = bytes.as_ref().map(|b| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            CString::new(&b[..end]).expect("no NUL before the end")
        });
        Arg { owned }
    }
    fn ptr(&self) -> *const c_char {
        self.owned.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
    }
    /// The status the string alone forces: NULL or invalid UTF-8.
    fn forced(&self) -> Option<kepmlog_status> {
        match &self.owned {
            None => Some(KEPMLOG_ERR_NULL_ARGUMENT),
            Some(c) if c.to_str().is_err() => Some(KEPMLOG_ERR_INVALID_UTF8),
            Some(_) => None,
        }
    }
    /// As [`Arg::forced`] for an argument where NULL means "".
    fn forced_optional(&self) -> Option<kepmlog_status> {
        self.owned.as_ref().and(self.forced())
    }
}

/// Checks a status against the documented ones and the error text against it.
fn check(call: &str, status: kepmlog_status, allowed: &[kepmlog_status]) {
    assert_ne!(status, KEPMLOG_ERR_PANIC, "{call} panicked");
    assert!(allowed.contains(&status), "{call}: undocumented {status:?}");
    let name = kepmlog_status_name(status as c_int);
    // SAFETY: kepmlog_status_name returns a static NUL-terminated string, never NULL.
    let name = unsafe { CStr::from_ptr(name) };
    assert_ne!(
        name.to_bytes(),
        b"KEPMLOG_UNKNOWN_STATUS",
        "{call}: {status:?}"
    );
    let text = kepmlog_last_error();
    assert!(!text.is_null(), "{call}: kepmlog_last_error() is NULL");
    // SAFETY: not NULL; kepmlog_last_error returns a NUL-terminated string that stays valid
    // until the next kepmlog call on this thread, and none happens before its last use here.
    let text = unsafe { CStr::from_ptr(text) };
    let text = text.to_str().expect("kepmlog_last_error() is not UTF-8");
    if status == KEPMLOG_OK {
        assert!(text.is_empty(), "{call}: OK with error text {text:?}");
    } else {
        assert!(!text.is_empty(), "{call}: {status:?} without error text");
    }
}

fn check_forced(call: &str, status: kepmlog_status, forced: Option<kepmlog_status>) {
    if let Some(f) = forced {
        assert_eq!(status, f, "{call}");
    } else {
        assert_ne!(status, KEPMLOG_ERR_NULL_ARGUMENT, "{call}");
        assert_ne!(status, KEPMLOG_ERR_INVALID_UTF8, "{call}");
    }
}

/// A loopback port nothing listens on: bound once, then released.
fn unused_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        l.local_addr().expect("local address").port()
    })
}

const SETTER: &[kepmlog_status] = &[
    KEPMLOG_OK,
    KEPMLOG_ERR_NULL_ARGUMENT,
    KEPMLOG_ERR_INVALID_UTF8,
    KEPMLOG_ERR_INVALID_ARGUMENT,
];

/// Points the options at the unused port, with nothing on stderr, and a small queue.
fn quiet(options: &mut kepmlog_options) {
    // SAFETY: `options` is a live handle; the host is a NUL-terminated literal.
    let status =
        unsafe { kepmlog_options_set_broker(Some(options), c"127.0.0.1".as_ptr(), unused_port()) };
    check("set_broker(loopback)", status, &[KEPMLOG_OK]);
    // SAFETY: `options` is a live handle.
    let status = unsafe { kepmlog_options_set_stderr_diagnostics(Some(options), false) };
    check("set_stderr_diagnostics", status, &[KEPMLOG_OK]);
    // SAFETY: `options` is a live handle.
    let status = unsafe { kepmlog_options_set_undelivered_to_stderr(Some(options), false) };
    check("set_undelivered_to_stderr", status, &[KEPMLOG_OK]);
    // SAFETY: `options` is a live handle.
    let status = unsafe { kepmlog_options_set_queue_capacity(Some(options), 64) };
    check("set_queue_capacity", status, &[KEPMLOG_OK]);
}

/// The process's logger for log calls and events; never freed.
struct Shared(*mut kepmlog_logger);
// SAFETY: a kepmlog_logger may be used from any thread (ffi/README.md); this one is never
// freed, so the pointer stays valid for the life of the process.
unsafe impl Send for Shared {}
// SAFETY: as above; the C ABI's logging calls take the logger by shared reference.
unsafe impl Sync for Shared {}

fn shared_logger() -> &'static kepmlog_logger {
    static LOGGER: OnceLock<Shared> = OnceLock::new();
    let shared = LOGGER.get_or_init(|| {
        let mut options: *mut kepmlog_options = std::ptr::null_mut();
        // SAFETY: `&mut options` is writable storage for one pointer.
        let status = unsafe { kepmlog_options_new(&mut options) };
        check("options_new", status, &[KEPMLOG_OK]);
        // SAFETY: options_new succeeded, so `options` is a live handle, used only here.
        let o = unsafe { options.as_mut() }.expect("options handle");
        // SAFETY: live handle; NUL-terminated literals.
        let status = unsafe { kepmlog_options_set_job_id(Some(&mut *o), c"fuzz".as_ptr()) };
        check("set_job_id(fuzz)", status, &[KEPMLOG_OK]);
        // SAFETY: live handle; NUL-terminated literal.
        let status = unsafe { kepmlog_options_set_token(Some(&mut *o), c"c-strings".as_ptr()) };
        check("set_token(c-strings)", status, &[KEPMLOG_OK]);
        quiet(o);
        let mut logger: *mut kepmlog_logger = std::ptr::null_mut();
        // SAFETY: live options handle; `&mut logger` is writable storage for one pointer.
        let status = unsafe { kepmlog_logger_new(Some(&*o), &mut logger) };
        check("logger_new(shared)", status, &[KEPMLOG_OK]);
        // SAFETY: `options` came from options_new and is freed once, here.
        let status = unsafe { kepmlog_options_free(&mut options) };
        check("options_free", status, &[KEPMLOG_OK]);
        Shared(logger)
    });
    // SAFETY: logger_new succeeded, so the pointer is a live logger, never freed (`Shared`).
    unsafe { shared.0.as_ref() }.expect("logger handle")
}

type Setter = unsafe extern "C" fn(Option<&mut kepmlog_options>, *const c_char) -> kepmlog_status;

fuzz_target!(|input: Input| {
    let mut options: *mut kepmlog_options = std::ptr::null_mut();
    // SAFETY: `&mut options` is writable storage for one pointer.
    let status = unsafe { kepmlog_options_new(&mut options) };
    check("options_new", status, &[KEPMLOG_OK]);
    // SAFETY: options_new succeeded: a live handle, used through this reference only until
    // it is freed at the end.
    let o = unsafe { options.as_mut() }.expect("options handle");

    let setters: [(&str, Setter, &Option<Vec<u8>>); 6] = [
        ("set_source", kepmlog_options_set_source, &input.source),
        ("set_job_id", kepmlog_options_set_job_id, &input.job_id),
        ("set_token", kepmlog_options_set_token, &input.token),
        (
            "set_api_base",
            kepmlog_options_set_api_base,
            &input.api_base,
        ),
        (
            "set_event_topic",
            kepmlog_options_set_event_topic,
            &input.event_topic,
        ),
        (
            "set_fallback_name",
            kepmlog_options_set_fallback_name,
            &input.fallback_name,
        ),
    ];
    for (call, setter, bytes) in setters {
        let arg = Arg::new(bytes);
        // SAFETY: live options handle; the argument is NULL or a NUL-terminated string that
        // outlives the call.
        let status = unsafe { setter(Some(&mut *o), arg.ptr()) };
        check(call, status, SETTER);
        check_forced(call, status, arg.forced());
    }
    let broker = Arg::new(&input.broker);
    // SAFETY: live options handle; the host is NULL or a NUL-terminated string.
    let status =
        unsafe { kepmlog_options_set_broker(Some(&mut *o), broker.ptr(), input.broker_port) };
    check("set_broker", status, SETTER);
    check_forced("set_broker", status, broker.forced());

    if input.create {
        quiet(o);
        let mut logger: *mut kepmlog_logger = std::ptr::null_mut();
        // SAFETY: live options handle; `&mut logger` is writable storage for one pointer.
        let status = unsafe { kepmlog_logger_new(Some(&*o), &mut logger) };
        check(
            "logger_new",
            status,
            &[
                KEPMLOG_OK,
                KEPMLOG_ERR_INVALID_ARGUMENT,
                KEPMLOG_ERR_MISSING_JOB_ID,
                KEPMLOG_ERR_INVALID_JOB_ID,
            ],
        );
        if status == KEPMLOG_OK {
            // SAFETY: logger_new succeeded: a live logger, no other thread uses it.
            let status = unsafe { kepmlog_shutdown(logger.as_ref(), 0, None) };
            check("shutdown", status, &[KEPMLOG_OK, KEPMLOG_ERR_TIMEOUT]);
            // SAFETY: `logger` came from logger_new and is freed once, here.
            let status = unsafe { kepmlog_logger_free(&mut logger) };
            check("logger_free", status, &[KEPMLOG_OK]);
        }
    }
    // SAFETY: `options` came from options_new and is freed once, here; `o` is not used after.
    let status = unsafe { kepmlog_options_free(&mut options) };
    check("options_free", status, &[KEPMLOG_OK]);

    let logger = shared_logger();
    let (category, message, correlation_id, context) = (
        Arg::new(&input.category),
        Arg::new(&input.message),
        Arg::new(&input.correlation_id),
        Arg::new(&input.context),
    );
    let logged: &[kepmlog_status] = &[
        KEPMLOG_OK,
        KEPMLOG_ERR_NULL_ARGUMENT,
        KEPMLOG_ERR_INVALID_UTF8,
        KEPMLOG_ERR_INVALID_LEVEL,
        KEPMLOG_ERR_EMPTY_MESSAGE,
        KEPMLOG_ERR_QUEUE_FULL,
    ];
    let level_ok = (0..=5).contains(&input.level);
    // SAFETY: a live logger; every string is NULL or NUL-terminated and outlives the call.
    let status = unsafe { kepmlog_log(Some(logger), input.level, category.ptr(), message.ptr()) };
    check("log", status, logged);
    if !level_ok {
        assert_eq!(status, KEPMLOG_ERR_INVALID_LEVEL, "log");
    } else if let Some(f) = category.forced_optional().or(message.forced()) {
        assert_eq!(status, f, "log");
    }
    // SAFETY: as above.
    let status = unsafe {
        kepmlog_log_with(
            Some(logger),
            input.level,
            category.ptr(),
            message.ptr(),
            correlation_id.ptr(),
            context.ptr(),
        )
    };
    check("log_with", status, logged);
    if !level_ok {
        assert_eq!(status, KEPMLOG_ERR_INVALID_LEVEL, "log_with");
    } else if let Some(f) = category
        .forced_optional()
        .or(message.forced())
        .or(correlation_id.forced_optional())
        .or(context.forced_optional())
    {
        assert_eq!(status, f, "log_with");
    }
    let event = Arg::new(&input.event);
    // SAFETY: a live logger; the JSON is NULL or a NUL-terminated string.
    let status = unsafe { kepmlog_event(Some(logger), event.ptr()) };
    check(
        "event",
        status,
        &[
            KEPMLOG_OK,
            KEPMLOG_ERR_NULL_ARGUMENT,
            KEPMLOG_ERR_INVALID_UTF8,
            KEPMLOG_ERR_INVALID_EVENT,
            KEPMLOG_ERR_QUEUE_FULL,
        ],
    );
    check_forced("event", status, event.forced());
});
