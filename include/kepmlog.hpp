/*
 * kepmlog.hpp: a small header-only C++11 RAII wrapper over the C ABI in kepmlog.h.
 *
 *   kepmlog::logger log = kepmlog::logger::from_args("MyTool", argc, argv);
 *   log.info("Scan", "Scan complete: 0 issues detected.");
 *   log.shutdown(std::chrono::seconds(5));   // throws kepmlog::error on timeout/denial
 *
 * Logging calls never throw and never block: they return the kepmlog_status (a dropped record
 * is KEPMLOG_ERR_QUEUE_FULL and is counted in stats()). Construction, flush and shutdown throw
 * kepmlog::error, whose what() names the fix; a constructor that throws leaves nothing behind
 * (no handle, nothing for the destructor or exit to free). The destructor frees the logger,
 * shutting it down first (bounded by the drop timeout) when shutdown() was not called.
 */
#ifndef KEPMLOG_HPP
#define KEPMLOG_HPP

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kepmlog.h"

namespace kepmlog {

/** A failed kepmlog call: the status, the library's text, and for flush/shutdown the number
 *  of records not delivered. */
class error : public std::runtime_error {
public:
    error(kepmlog_status status, const std::string &what, std::uint64_t undelivered = 0)
        : std::runtime_error(what), status_(status), undelivered_(undelivered) {}
    kepmlog_status status() const noexcept { return status_; }
    std::uint64_t undelivered() const noexcept { return undelivered_; }

private:
    kepmlog_status status_;
    std::uint64_t undelivered_;
};

namespace detail {
inline void check(kepmlog_status status, std::uint64_t undelivered = 0) {
    if (status != KEPMLOG_OK) {
        throw error(status, kepmlog_last_error(), undelivered);
    }
}
inline std::uint64_t millis(std::chrono::milliseconds d) {
    return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}
}  // namespace detail

/** The six KeeperLogger levels with their wire values. */
enum class level : int {
    debug = KEPMLOG_LEVEL_DEBUG,
    info = KEPMLOG_LEVEL_INFO,
    warning = KEPMLOG_LEVEL_WARNING,
    error = KEPMLOG_LEVEL_ERROR,
    critical = KEPMLOG_LEVEL_CRITICAL,
    verbose = KEPMLOG_LEVEL_VERBOSE,
};

/** Options for a logger; every setter returns *this and throws kepmlog::error on bad input. */
class options {
public:
    options() { detail::check(kepmlog_options_new(&p_)); }
    ~options() { (void)kepmlog_options_free(&p_); }
    options(const options &) = delete;
    options &operator=(const options &) = delete;
    options(options &&o) noexcept : p_(o.p_) { o.p_ = nullptr; }

    options &source(const std::string &v) { return set(kepmlog_options_set_source(p_, v.c_str())); }
    options &default_category(const std::string &v) {
        return set(kepmlog_options_set_default_category(p_, v.c_str()));
    }
    options &job_id(const std::string &v) { return set(kepmlog_options_set_job_id(p_, v.c_str())); }
    options &token(const std::string &v) { return set(kepmlog_options_set_token(p_, v.c_str())); }
    options &api_base(const std::string &v) { return set(kepmlog_options_set_api_base(p_, v.c_str())); }
    options &ca_bundle(const std::string &path) {
        return set(kepmlog_options_set_ca_bundle(p_, path.c_str()));
    }
    options &broker(const std::string &host, std::uint16_t port) {
        return set(kepmlog_options_set_broker(p_, host.c_str(), port));
    }
    options &event_topic(const std::string &v) {
        return set(kepmlog_options_set_event_topic(p_, v.c_str()));
    }
    options &queue_capacity(std::size_t n) { return set(kepmlog_options_set_queue_capacity(p_, n)); }
    /** Wait up to `timeout` for room when the queue is full instead of dropping at once. */
    options &block_when_full(std::chrono::milliseconds timeout) {
        return set(kepmlog_options_set_overflow(p_, KEPMLOG_OVERFLOW_BLOCK, detail::millis(timeout)));
    }
    options &settings_timeout(std::chrono::milliseconds t) {
        return set(kepmlog_options_set_settings_timeout(p_, detail::millis(t)));
    }
    options &drop_timeout(std::chrono::milliseconds t) {
        return set(kepmlog_options_set_drop_timeout(p_, detail::millis(t)));
    }
    options &args(int argc, const char *const *argv) {
        return set(kepmlog_options_set_args(p_, argc, argv));
    }
    options &stderr_diagnostics(bool on) {
        return set(kepmlog_options_set_stderr_diagnostics(p_, on));
    }
    /** Without a job id: KEPMLOG_FALLBACK_ERROR (throw, naming the fix) or
     *  KEPMLOG_FALLBACK_STDERR (write every record to stderr as a text line). */
    options &fallback(kepmlog_fallback f) {
        return set(kepmlog_options_set_fallback(p_, static_cast<int>(f)));
    }
    /** Write the records still undelivered at shutdown's deadline to stderr (default true). */
    options &undelivered_to_stderr(bool on) {
        return set(kepmlog_options_set_undelivered_to_stderr(p_, on));
    }

    const kepmlog_options *get() const noexcept { return p_; }

private:
    options &set(kepmlog_status s) {
        detail::check(s);
        return *this;
    }
    kepmlog_options *p_ = nullptr;
};

/** A logger: move-only, usable from many threads at once (const methods). */
class logger {
public:
    explicit logger(const options &o) { detail::check(kepmlog_logger_new(o.get(), &p_)); }

    /** The common case: job id from KEEPER_JOB_ID, API base from --keeper-api-base in argv. */
    static logger from_args(const char *source, int argc, const char *const *argv) {
        kepmlog_logger *p = nullptr;
        detail::check(kepmlog_logger_new_from_args(source, argc, argv, &p));
        return logger(p);
    }
    static logger from_args(const char *source, int argc, char **argv) {
        return from_args(source, argc, const_cast<const char *const *>(argv));
    }

    ~logger() { (void)kepmlog_logger_free(&p_); }
    logger(const logger &) = delete;
    logger &operator=(const logger &) = delete;
    logger(logger &&o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    logger &operator=(logger &&o) noexcept {
        if (this != &o) {
            (void)kepmlog_logger_free(&p_);
            p_ = o.p_;
            o.p_ = nullptr;
        }
        return *this;
    }

    kepmlog_status log(level lv, const std::string &category, const std::string &message) const noexcept {
        return kepmlog_log(p_, static_cast<int>(lv), category.c_str(), message.c_str());
    }
    kepmlog_status log(level lv, const std::string &category, const std::string &message,
                       const std::string &correlation_id, const std::string &context) const noexcept {
        return kepmlog_log_with(p_, static_cast<int>(lv), category.c_str(), message.c_str(),
                                correlation_id.c_str(), context.c_str());
    }
    kepmlog_status debug(const std::string &c, const std::string &m) const noexcept { return log(level::debug, c, m); }
    kepmlog_status info(const std::string &c, const std::string &m) const noexcept { return log(level::info, c, m); }
    kepmlog_status warning(const std::string &c, const std::string &m) const noexcept { return log(level::warning, c, m); }
    kepmlog_status error(const std::string &c, const std::string &m) const noexcept { return log(level::error, c, m); }
    kepmlog_status critical(const std::string &c, const std::string &m) const noexcept { return log(level::critical, c, m); }
    kepmlog_status verbose(const std::string &c, const std::string &m) const noexcept { return log(level::verbose, c, m); }

    /** Publishes one JSON object (as text) to the job's event topic. */
    kepmlog_status event(const std::string &json) const noexcept { return kepmlog_event(p_, json.c_str()); }

    /** Waits for every record logged so far; throws kepmlog::error (timeout, denied). */
    void flush(std::chrono::milliseconds timeout) const {
        std::uint64_t undelivered = 0;
        kepmlog_status s = kepmlog_flush(p_, detail::millis(timeout), &undelivered);
        detail::check(s, undelivered);
    }
    /** Flushes, disconnects, stops the worker; idempotent. Throws kepmlog::error when records
     *  were not delivered by the deadline or were denied. */
    void shutdown(std::chrono::milliseconds timeout) const {
        std::uint64_t undelivered = 0;
        kepmlog_status s = kepmlog_shutdown(p_, detail::millis(timeout), &undelivered);
        detail::check(s, undelivered);
    }
    kepmlog_logger_stats stats() const {
        kepmlog_logger_stats s = kepmlog_logger_stats();
        detail::check(kepmlog_stats(p_, &s));
        return s;
    }
    /** Records written to stderr as text lines (see kepmlog_logger_printed). */
    std::uint64_t printed() const {
        std::uint64_t n = 0;
        detail::check(kepmlog_logger_printed(p_, &n, nullptr));
        return n;
    }
    /** True when records go to stderr instead of KeeperLogger (fallback stderr, no job id). */
    bool writes_to_stderr() const {
        std::uint64_t n = 0;
        bool on = false;
        detail::check(kepmlog_logger_printed(p_, &n, &on));
        return on;
    }
    std::string client_id() const {
        const char *id = nullptr;
        detail::check(kepmlog_logger_client_id(p_, &id));
        return id;
    }
    const kepmlog_logger *get() const noexcept { return p_; }

private:
    explicit logger(kepmlog_logger *p) noexcept : p_(p) {}
    kepmlog_logger *p_ = nullptr;
};

}  // namespace kepmlog

#endif  // KEPMLOG_HPP
