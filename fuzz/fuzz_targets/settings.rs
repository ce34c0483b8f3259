//! Plugin Settings body parsing (`settings::parse_settings`, reached through
//! `kepmlog::__fuzz`): the body an agent, or whatever answers on its port, sends back.
//!
//! Invariants: never panics; `Ok` gives a non-empty host without surrounding white space and a
//! port in 1..=65535, and the same answer for the canonical body built from them; `Err` has a
//! non-empty text (it becomes the operator's fallback warning).
#![no_main]

use libfuzzer_sys::fuzz_target;

use kepmlog::__fuzz::parse_settings;

fuzz_target!(|data: &[u8]| {
    // discover() reads the body as a string: invalid UTF-8 never reaches the parser.
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match parse_settings(body) {
        Ok((host, port)) => {
            assert!(!host.is_empty(), "empty host from {body:?}");
            assert_eq!(host, host.trim(), "host keeps white space: {body:?}");
            assert!(port >= 1, "port 0 from {body:?}");
            let canonical = serde_json::json!({"broker.host": host, "broker.port": port});
            assert_eq!(
                parse_settings(&canonical.to_string()),
                Ok((host.clone(), port)),
                "{body:?}"
            );
        }
        Err(e) => assert!(!e.is_empty(), "empty error for {body:?}"),
    }
});
