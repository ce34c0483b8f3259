/*
 * kepmlog_spdlog.hpp: an spdlog sink that sends every spdlog message to a kepmlog logger
 * (kepmlog.hpp), so a tool that already logs with spdlog reaches the agent's KeeperLogger topic.
 * Header-only; C++11 (what spdlog 1.x and fmt need); tested with Debian bookworm's spdlog 1.10
 * (compiled or header-only) and fmt 9.
 *
 *   auto kl = std::make_shared<kepmlog::logger>(kepmlog::logger::from_args("MyTool", argc, argv));
 *   auto log = std::make_shared<spdlog::logger>("Scan", std::make_shared<kepmlog::spdlog_sink_mt>(kl));
 *   log->info("Scan complete: {} issues detected.", 0);
 *   ...
 *   kl->shutdown(std::chrono::seconds(5));   // before exit, as without spdlog
 *
 * What goes where:
 *   level     trace -> Verbose, debug -> Debug, info -> Info, warn -> Warning, err -> Error,
 *             critical -> Critical; a message at level off is never sent.
 *   Category  the spdlog logger's name, or the category given to the constructor (then for
 *             every message). An empty one (spdlog's default logger is named "") becomes the
 *             kepmlog logger's default category.
 *   Message   the formatted payload only (msg.payload): the sink's pattern and formatter are
 *             not used, the agent records time, level and source itself. A NUL byte in the
 *             payload ends the message (the C ABI takes C strings).
 *   Context, CorrelationId  stay empty: spdlog messages carry no fields (spdlog 1.10 has no MDC).
 *
 * Errors follow kepmlog.hpp: a record kepmlog refuses (empty message, invalid UTF-8, queue
 * full) is not an exception, it is counted in rejected() (a full queue also in the kepmlog
 * logger's stats().dropped). Anything else (the kepmlog logger was shut down, a forked child,
 * an internal error) and a failed flush throw kepmlog::error, which the spdlog logger catches
 * and hands to its error handler (spdlog::logger::set_error_handler; by default one line on
 * stderr per second), as spdlog does for its own sinks.
 *
 * flush() (spdlog's logger->flush(), flush_on(), flush_every()) waits for the broker's acks up
 * to flush_timeout(), 5 s by default (KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS); spdlog_sink_mt holds its
 * mutex meanwhile, so other threads logging through this sink wait as well. Logging itself
 * never blocks (kepmlog queues the record). With spdlog::async_logger both run on spdlog's
 * worker thread.
 *
 * The kepmlog logger: shared (the std::shared_ptr constructor; it is shut down and freed when
 * the last owner lets go, bounded by its drop timeout) or borrowed (the reference constructor:
 * it must outlive every spdlog logger using the sink, including those in spdlog's registry
 * and an async logger's queue, and must not be moved from). Call its shutdown() yourself
 * before main returns, after spdlog::shutdown() for an async logger (which drains the queue).
 */
#ifndef KEPMLOG_SPDLOG_HPP
#define KEPMLOG_SPDLOG_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include "kepmlog.hpp"

namespace kepmlog {

/** The KeeperLogger level of an spdlog level; false for level off (and anything unknown). */
inline bool level_from_spdlog(spdlog::level::level_enum in, level &out) noexcept {
    switch (in) {
    case spdlog::level::trace: out = level::verbose; return true;
    case spdlog::level::debug: out = level::debug; return true;
    case spdlog::level::info: out = level::info; return true;
    case spdlog::level::warn: out = level::warning; return true;
    case spdlog::level::err: out = level::error; return true;
    case spdlog::level::critical: out = level::critical; return true;
    default: return false;
    }
}

/** The sink; Mutex as for spdlog's own sinks (use spdlog_sink_mt or spdlog_sink_st). */
template <typename Mutex>
class spdlog_sink : public spdlog::sinks::base_sink<Mutex> {
public:
    /** Shares ownership of `log`; throws kepmlog::error (KEPMLOG_ERR_NULL_ARGUMENT) when null.
     *  A non-empty `category` is used for every message instead of the spdlog logger's name. */
    explicit spdlog_sink(std::shared_ptr<const logger> log, std::string category = std::string())
        : log_(std::move(log)), category_(std::move(category)) {
        if (!log_) {
            throw error(KEPMLOG_ERR_NULL_ARGUMENT, "kepmlog::spdlog_sink: the kepmlog logger is null");
        }
    }
    /** Borrows `log`: it must outlive this sink (see the top of this file). */
    explicit spdlog_sink(const logger &log, std::string category = std::string())
        // The aliasing constructor with an empty owner: a pointer that owns nothing.
        : spdlog_sink(std::shared_ptr<const logger>(std::shared_ptr<const logger>(), &log),
                      std::move(category)) {}

    const logger &kepmlog_logger() const noexcept { return *log_; }

    std::chrono::milliseconds flush_timeout() {
        std::lock_guard<Mutex> lock(this->mutex_);
        return flush_timeout_;
    }
    void set_flush_timeout(std::chrono::milliseconds timeout) {
        std::lock_guard<Mutex> lock(this->mutex_);
        flush_timeout_ = timeout;
    }

    /** Messages kepmlog did not take (any status but KEPMLOG_OK), thrown or not. */
    std::uint64_t rejected() const noexcept { return rejected_.load(std::memory_order_relaxed); }
    /** The status of the latest message kepmlog did not take; KEPMLOG_OK when none was. */
    kepmlog_status last_rejection() const noexcept {
        return static_cast<kepmlog_status>(last_rejection_.load(std::memory_order_relaxed));
    }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        level lv;
        if (!level_from_spdlog(msg.level, lv)) {
            return;
        }
        // Reused buffers (under the base sink's mutex): after the first messages a call does
        // not allocate. The C ABI needs NUL-terminated strings, which the views are not.
        message_.assign(msg.payload.data(), msg.payload.size());
        const std::string *category = &category_;
        if (category_.empty()) {
            logger_name_.assign(msg.logger_name.data(), msg.logger_name.size());
            category = &logger_name_;
        }
        kepmlog_status s = log_->log(lv, *category, message_);
        if (s == KEPMLOG_OK) {
            return;
        }
        rejected_.fetch_add(1, std::memory_order_relaxed);
        last_rejection_.store(static_cast<int>(s), std::memory_order_relaxed);
        switch (s) {
        case KEPMLOG_ERR_EMPTY_MESSAGE:
        case KEPMLOG_ERR_INVALID_UTF8:
        case KEPMLOG_ERR_QUEUE_FULL:
            // About this record only, and the next one may well go through: kepmlog.hpp
            // returns these from its logging calls, it does not throw them.
            return;
        default:
            throw failure(s);
        }
    }

    void flush_() override {
        std::uint64_t undelivered = 0;
        kepmlog_status s = kepmlog_flush(log_->get(), detail::millis(flush_timeout_), &undelivered);
        // After shutdown nothing is left to wait for, and shutdown already reported what was
        // lost: spdlog::shutdown() and flush_every() after it must not print errors.
        if (s != KEPMLOG_OK && s != KEPMLOG_ERR_SHUT_DOWN) {
            throw failure(s, undelivered);
        }
    }

private:
    // spdlog's error handler prints what() after the logger's name only: say whose error it is.
    static error failure(kepmlog_status s, std::uint64_t undelivered = 0) {
        return error(s, std::string("kepmlog: ") + kepmlog_last_error(), undelivered);
    }

    std::shared_ptr<const logger> log_;
    std::string category_;
    std::string message_, logger_name_;
    std::chrono::milliseconds flush_timeout_{KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS};
    std::atomic<std::uint64_t> rejected_{0};
    std::atomic<int> last_rejection_{KEPMLOG_OK};
};

/** For loggers used from several threads (what spdlog's *_mt sinks are). */
using spdlog_sink_mt = spdlog_sink<std::mutex>;
/** For one thread, without a lock (spdlog's *_st). */
using spdlog_sink_st = spdlog_sink<spdlog::details::null_mutex>;

}  // namespace kepmlog

#endif  // KEPMLOG_SPDLOG_HPP
