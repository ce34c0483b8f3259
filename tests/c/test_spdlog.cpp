// The spdlog sink (include/kepmlog_spdlog.hpp) against `kepm-devagent serve` (real Mosquitto
// over TLS), built as C++11:
//   - every spdlog level: the exact MetaData at the broker, Category from the logger's name,
//     Message the payload only (the pattern is not applied), level off never sent;
//   - levels filtered by the spdlog logger or by the sink never reach kepmlog;
//   - a fixed category, spdlog's unnamed default logger (the default category), a borrowed
//     kepmlog logger with the _st sink;
//   - tests/vectors/records.json where spdlog can express the case (no correlation id, no
//     context): the same MetaData as through the C API; refused records counted, not thrown;
//   - logger->flush() waits for the acks; a failed flush and logging after shutdown reach
//     spdlog's error handler; flushing after shutdown does not;
//   - an async logger (spdlog::create_async) from 4 threads: every record arrives after
//     spdlog::shutdown().
// Usage: test_spdlog [VECTORS_JSON]   (env KEPM_DEVAGENT: devagent binary)
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <kepmlog_spdlog.hpp>
#include <spdlog/async.h>
#include <spdlog/spdlog.h>

// devagent.h and json.h hold helpers this program does not all use.
#pragma GCC diagnostic ignored "-Wunused-function"
#include "devagent.h"
#include "json.h"

#include "check.h"

namespace {

devagent agent;
const char *JOB_ID = "spdlog-cpp";
const int LONG_MS = 30000;

kepmlog::options agent_options(const std::string &source) {
    kepmlog::options o;
    o.source(source).job_id(JOB_ID).token("CppSpdlog").api_base(agent.api_base).ca_bundle(agent.ca);
    return o;
}

std::shared_ptr<kepmlog::logger> new_logger(const std::string &source, const std::string &default_category = "") {
    kepmlog::options o = agent_options(source);
    if (!default_category.empty()) o.default_category(default_category);
    return std::make_shared<kepmlog::logger>(o);
}

// Counts the calls of an spdlog logger's error handler and keeps the last text.
struct handler_log {
    int calls = 0;
    std::string last;
};

void count_errors(spdlog::logger &lg, handler_log &h) {
    lg.set_error_handler([&h](const std::string &text) {
        h.calls++;
        h.last = text;
    });
}

bool contains(const std::string &haystack, const char *needle) { return haystack.find(needle) != std::string::npos; }

size_t count_source_locked(const char *source) {
    size_t n = 0;
    for (size_t i = 0; i < agent.n_msgs; i++) {
        if (std::strcmp(agent.msgs[i].topic, "KeeperLogger") != 0) continue;
        const char *s = j_str(j_get(&agent.msgs[i].payload, "MetaData"), "Source");
        if (s && std::strcmp(s, source) == 0) n++;
    }
    return n;
}

// Waits until `want` KeeperLogger records of `source` arrived (or `ms`); returns the count.
size_t wait_source(const char *source, size_t want, int ms) {
    struct timespec ts;
    da_deadline(&ts, ms);
    pthread_mutex_lock(&agent.mu);
    size_t n;
    while ((n = count_source_locked(source)) < want && !agent.eof) {
        if (pthread_cond_timedwait(&agent.cv, &agent.mu, &ts) == ETIMEDOUT) {
            n = count_source_locked(source);
            break;
        }
    }
    pthread_mutex_unlock(&agent.mu);
    return n;
}

// Checks that the MetaData of the KeeperLogger records of `source` are exactly `expect`, in
// order (after waiting for them: flush returns at the broker's ack, the devagent reads on).
void check_source(const char *source, const std::vector<const jval *> &expect, const std::vector<std::string> &names) {
    size_t got = wait_source(source, expect.size(), LONG_MS);
    CHECK(got == expect.size(), "source %s: broker has %zu records, want %zu", source, got, expect.size());
    pthread_mutex_lock(&agent.mu);
    size_t k = 0;
    for (size_t i = 0; i < agent.n_msgs && k < expect.size(); i++) {
        if (std::strcmp(agent.msgs[i].topic, "KeeperLogger") != 0) continue;
        const jval *meta = j_get(&agent.msgs[i].payload, "MetaData");
        const char *s = j_str(meta, "Source");
        if (!s || std::strcmp(s, source) != 0) continue;
        CHECK(meta && j_equal(meta, expect[k]), "source %s: record %zu (%s) MetaData differs (Message %s)", source, k,
              names[k].c_str(), j_str(meta, "Message") ? j_str(meta, "Message") : "(none)");
        k++;
    }
    pthread_mutex_unlock(&agent.mu);
}

// The MetaData of a record whose strings need no JSON escaping.
struct expected {
    std::vector<jval> vals;
    std::vector<std::string> names;
    void add(int level, const char *source, const char *category, const char *message) {
        char text[1024];
        std::snprintf(text, sizeof text,
                      "{\"MessageType\":4,\"LogLevel\":%d,\"Source\":\"%s\",\"Category\":\"%s\",\"Message\":\"%s\","
                      "\"CorrelationId\":\"\",\"Context\":\"\"}",
                      level, source, category, message);
        jval v;
        std::memset(&v, 0, sizeof v);
        CHECK(j_parse(text, std::strlen(text), &v) == 0, "cannot parse %s", text);
        vals.push_back(v);
        names.push_back(message);
    }
    std::vector<const jval *> ptrs() const {
        std::vector<const jval *> p;
        for (size_t i = 0; i < vals.size(); i++) p.push_back(&vals[i]);
        return p;
    }
    ~expected() {
        for (size_t i = 0; i < vals.size(); i++) j_free(&vals[i]);
    }
};

void test_levels() {
    SECTION("each spdlog level: exact MetaData, category from the name, payload only, off never sent");
    const char *source = "SpdlogLevels";
    auto kl = new_logger(source);
    auto sink = std::make_shared<kepmlog::spdlog_sink_mt>(kl);
    spdlog::logger lg("Scan", sink);
    handler_log h;
    count_errors(lg, h);
    lg.set_level(spdlog::level::trace);
    // Would put time and level in front of the message if the sink applied it.
    lg.set_pattern("[%H:%M:%S.%e] [%n] [%l] %v");
    lg.trace("trace {}", 1);
    lg.debug("debug {}", 2);
    lg.info("Scan complete: {} issue(s) in {} file(s).", 3, 18);
    lg.warn("warn {}", "four");
    lg.error("error {:.1f}", 5.0);
    lg.critical("critical {}", 6);
    lg.log(spdlog::level::off, "off is never sent");
    lg.flush();
    kepmlog_logger_stats st = kl->stats();
    // flush() returned: the broker acknowledged everything the sink passed on.
    CHECK(st.accepted == 6 && st.delivered == 6 && st.pending == 0 && st.dropped == 0,
          "after flush: accepted %" PRIu64 " delivered %" PRIu64 " pending %" PRIu64, st.accepted, st.delivered,
          st.pending);
    CHECK(h.calls == 0, "error handler called %d times (%s)", h.calls, h.last.c_str());
    CHECK(sink->rejected() == 0 && sink->last_rejection() == KEPMLOG_OK, "rejected %" PRIu64, sink->rejected());
    expected e;
    e.add(KEPMLOG_LEVEL_VERBOSE, source, "Scan", "trace 1");
    e.add(KEPMLOG_LEVEL_DEBUG, source, "Scan", "debug 2");
    e.add(KEPMLOG_LEVEL_INFO, source, "Scan", "Scan complete: 3 issue(s) in 18 file(s).");
    e.add(KEPMLOG_LEVEL_WARNING, source, "Scan", "warn four");
    e.add(KEPMLOG_LEVEL_ERROR, source, "Scan", "error 5.0");
    e.add(KEPMLOG_LEVEL_CRITICAL, source, "Scan", "critical 6");
    check_source(source, e.ptrs(), e.names);
    kl->shutdown(std::chrono::milliseconds(LONG_MS));
}

void test_filtered() {
    SECTION("levels filtered by the spdlog logger or the sink are never sent");
    const char *source = "SpdlogFilter";
    auto kl = new_logger(source);
    auto sink = std::make_shared<kepmlog::spdlog_sink_mt>(kl);
    spdlog::logger lg("Filter", sink);
    // spdlog's default logger level is info.
    lg.trace("filtered trace");
    lg.debug("filtered debug");
    lg.info("kept info");
    lg.set_level(spdlog::level::trace);
    sink->set_level(spdlog::level::warn);
    lg.debug("filtered by the sink");
    lg.info("filtered by the sink too");
    lg.warn("kept warn");
    lg.set_level(spdlog::level::off);
    lg.critical("filtered: the logger is off");
    lg.flush();
    kepmlog_logger_stats st = kl->stats();
    CHECK(st.accepted == 2 && st.delivered == 2, "accepted %" PRIu64 " delivered %" PRIu64 ", want 2", st.accepted,
          st.delivered);
    CHECK(sink->rejected() == 0, "filtered messages are not rejections: %" PRIu64, sink->rejected());
    expected e;
    e.add(KEPMLOG_LEVEL_INFO, source, "Filter", "kept info");
    e.add(KEPMLOG_LEVEL_WARNING, source, "Filter", "kept warn");
    check_source(source, e.ptrs(), e.names);
    kl->shutdown(std::chrono::milliseconds(LONG_MS));
}

void test_categories() {
    SECTION("a fixed category, two loggers on one sink, the unnamed logger, a borrowed logger (_st)");
    const char *source = "SpdlogCategory";
    auto kl = new_logger(source, "General");
    auto named = std::make_shared<kepmlog::spdlog_sink_mt>(kl);
    spdlog::logger alpha("Alpha", named), beta("Beta", named), unnamed("", named);
    alpha.info("from alpha");
    beta.info("from beta");
    unnamed.info("from the unnamed logger");
    // spdlog::create builds the sink from the arguments, as it does for spdlog's own sinks.
    auto created = spdlog::create<kepmlog::spdlog_sink_mt>("Created", kl);
    created->info("from spdlog::create");
    spdlog::drop("Created");
    {
        // Borrowed: *kl outlives the sink (it dies at the end of this block).
        auto fixed = std::make_shared<kepmlog::spdlog_sink_st>(*kl, "Fixed");
        spdlog::logger ignored("IgnoredName", fixed);
        ignored.warn("fixed category");
        CHECK(&fixed->kepmlog_logger() == kl.get(), "the sink borrows the logger it was given");
        CHECK(fixed->flush_timeout() == std::chrono::milliseconds(KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS),
              "flush timeout %lld ms", static_cast<long long>(fixed->flush_timeout().count()));
        fixed->set_flush_timeout(std::chrono::milliseconds(LONG_MS));
        ignored.flush();
    }
    try {
        kepmlog::spdlog_sink_mt null_sink{std::shared_ptr<const kepmlog::logger>()};
        CHECK(false, "a null logger is refused");
    } catch (const kepmlog::error &err) {
        CHECK(err.status() == KEPMLOG_ERR_NULL_ARGUMENT, "a null logger: %s", kepmlog_status_name(err.status()));
    }
    kl->flush(std::chrono::milliseconds(LONG_MS));
    expected e;
    e.add(KEPMLOG_LEVEL_INFO, source, "Alpha", "from alpha");
    e.add(KEPMLOG_LEVEL_INFO, source, "Beta", "from beta");
    e.add(KEPMLOG_LEVEL_INFO, source, "General", "from the unnamed logger");
    e.add(KEPMLOG_LEVEL_INFO, source, "Created", "from spdlog::create");
    e.add(KEPMLOG_LEVEL_WARNING, source, "Fixed", "fixed category");
    check_source(source, e.ptrs(), e.names);
    kl->shutdown(std::chrono::milliseconds(LONG_MS));
}

kepmlog_status status_of_kind(const char *kind) {
    if (std::strcmp(kind, "empty_message") == 0) return KEPMLOG_ERR_EMPTY_MESSAGE;
    if (std::strcmp(kind, "invalid_utf8") == 0) return KEPMLOG_ERR_INVALID_UTF8;
    return KEPMLOG_ERR_INTERNAL;
}

bool spdlog_level_of(int kepmlog_level, spdlog::level::level_enum &out) {
    switch (kepmlog_level) {
    case KEPMLOG_LEVEL_VERBOSE: out = spdlog::level::trace; return true;
    case KEPMLOG_LEVEL_DEBUG: out = spdlog::level::debug; return true;
    case KEPMLOG_LEVEL_INFO: out = spdlog::level::info; return true;
    case KEPMLOG_LEVEL_WARNING: out = spdlog::level::warn; return true;
    case KEPMLOG_LEVEL_ERROR: out = spdlog::level::err; return true;
    case KEPMLOG_LEVEL_CRITICAL: out = spdlog::level::critical; return true;
    default: return false;
    }
}

std::string read_all(const char *path) {
    std::string text;
    FILE *f = std::fopen(path, "rb");
    if (!f) return text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
    return text;
}

// Each case through an spdlog logger named after its category: the broker's MetaData is the
// vector's, as through the C API (the case's category "" is spdlog's unnamed logger).
void test_vectors(const char *path) {
    SECTION("vectors through spdlog, checked at the broker");
    std::string text = read_all(path);
    CHECK(!text.empty(), "cannot read %s", path);
    jval doc;
    std::memset(&doc, 0, sizeof doc);
    if (text.empty() || j_parse(text.data(), text.size(), &doc) != 0) {
        CHECK(false, "cannot parse %s", path);
        return;
    }
    const jval *cfg = j_get(&doc, "logger");
    const jval *cases = j_get(&doc, "cases");
    CHECK(cfg && cases && cases->t == J_ARR && cases->n > 0, "no cases in %s", path);
    if (!cfg || !cases) {
        j_free(&doc);
        return;
    }
    const char *source = j_str(cfg, "source");
    auto kl = new_logger(source, j_str(cfg, "default_category"));
    auto sink = std::make_shared<kepmlog::spdlog_sink_mt>(kl);
    std::vector<const jval *> want;
    std::vector<std::string> names;
    std::uint64_t refused = 0;
    int handler_calls = 0;
    for (size_t i = 0; i < cases->n; i++) {
        const jval *c = &cases->items[i];
        const jval *in = j_get(c, "input");
        const char *name = j_str(c, "name");
        const char *err = j_str(c, "error");
        const jval *lv = j_get(in, "level");
        const jval *category = j_get(in, "category");
        const jval *message = j_get(in, "message");
        spdlog::level::level_enum level;
        if (std::strcmp(j_str(in, "correlation_id"), "") != 0 || std::strcmp(j_str(in, "context"), "") != 0) {
            std::printf("# skip %s: spdlog has no correlation id or context\n", name);
            continue;
        }
        if (!lv || !spdlog_level_of(static_cast<int>(lv->num), level)) {
            std::printf("# skip %s: no spdlog level for it\n", name);
            continue;
        }
        if (std::strlen(message->s) != message->len || std::strlen(category->s) != category->len) {
            std::printf("# skip %s: a C string cannot hold NUL\n", name);
            continue;
        }
        spdlog::logger lg(category->s, sink);
        lg.set_error_handler([&handler_calls](const std::string &) { handler_calls++; });
        lg.set_level(spdlog::level::trace);
        lg.log(level, "{}", message->s);
        if (err) {
            refused++;
            CHECK(sink->rejected() == refused, "case %s: rejected %" PRIu64 ", want %" PRIu64, name, sink->rejected(),
                  refused);
            CHECK(sink->last_rejection() == status_of_kind(err), "case %s: %s, want error %s", name,
                  kepmlog_status_name(sink->last_rejection()), err);
        } else {
            want.push_back(j_get(c, "expect"));
            names.push_back(name);
        }
    }
    CHECK(handler_calls == 0, "refused records reached the error handler %d times", handler_calls);
    CHECK(sink->rejected() == refused, "rejected %" PRIu64 ", want %" PRIu64, sink->rejected(), refused);
    kl->flush(std::chrono::milliseconds(LONG_MS));
    kepmlog_logger_stats st = kl->stats();
    CHECK(st.accepted == want.size() && st.delivered == want.size(), "accepted %" PRIu64 " delivered %" PRIu64 ", want %zu",
          st.accepted, st.delivered, want.size());
    check_source(source, want, names);
    kl->shutdown(std::chrono::milliseconds(LONG_MS));
    j_free(&doc);
}

void test_errors() {
    SECTION("refused records are counted; a failed flush and a shut-down logger reach the error handler");
    const char *source = "SpdlogErrors";
    kepmlog::options o = agent_options(source);
    o.event_topic("Jobs/not-allowed/events").stderr_diagnostics(false);
    auto kl = std::make_shared<kepmlog::logger>(o);
    auto sink = std::make_shared<kepmlog::spdlog_sink_mt>(kl);
    spdlog::logger lg("Errors", sink);
    handler_log h;
    count_errors(lg, h);
    lg.info("");
    CHECK(sink->last_rejection() == KEPMLOG_ERR_EMPTY_MESSAGE, "empty: %s", kepmlog_status_name(sink->last_rejection()));
    lg.info("bad \xff byte");
    CHECK(sink->last_rejection() == KEPMLOG_ERR_INVALID_UTF8, "invalid UTF-8: %s",
          kepmlog_status_name(sink->last_rejection()));
    lg.info("   ");
    CHECK(sink->last_rejection() == KEPMLOG_ERR_EMPTY_MESSAGE, "blank: %s", kepmlog_status_name(sink->last_rejection()));
    lg.info("still {}", "logging");
    CHECK(sink->rejected() == 3, "rejected %" PRIu64 ", want 3", sink->rejected());
    CHECK(h.calls == 0, "refused records reached the error handler %d times (%s)", h.calls, h.last.c_str());

    // The broker denies the event: the next flush fails, through spdlog's error handler.
    CHECK(kl->event("{\"phase\":\"denied\"}") == KEPMLOG_OK, "event accepted");
    lg.flush();
    CHECK(h.calls == 1 && contains(h.last, "allowedPublications"), "flush: %d handler calls, last %s", h.calls,
          h.last.c_str());

    kl->shutdown(std::chrono::milliseconds(LONG_MS));
    lg.flush();
    CHECK(h.calls == 1, "flush after shutdown reported an error: %s", h.last.c_str());
    lg.warn("after shutdown");
    CHECK(h.calls == 2 && contains(h.last, "kepmlog: ") && contains(h.last, "shut down"),
          "logging after shutdown: %d handler calls, last %s", h.calls, h.last.c_str());
    CHECK(sink->rejected() == 4 && sink->last_rejection() == KEPMLOG_ERR_SHUT_DOWN, "after shutdown: rejected %" PRIu64 " (%s)",
          sink->rejected(), kepmlog_status_name(sink->last_rejection()));
    expected e;
    e.add(KEPMLOG_LEVEL_INFO, source, "Errors", "still logging");
    check_source(source, e.ptrs(), e.names);
}

void test_async() {
    SECTION("spdlog::create_async from 4 threads: everything arrives by spdlog::shutdown()");
    const char *source = "SpdlogAsync";
    const int threads = 4, per_thread = 500;
    auto kl = new_logger(source);
    spdlog::init_thread_pool(1024, 1);
    auto lg = spdlog::create_async<kepmlog::spdlog_sink_mt>("Async", kl);
    std::vector<std::thread> th;
    for (int t = 0; t < threads; t++) {
        th.push_back(std::thread([lg, t, per_thread]() {
            for (int k = 0; k < per_thread; k++) lg->info("t{}-{}", t, k);
        }));
    }
    for (size_t t = 0; t < th.size(); t++) th[t].join();
    lg->flush();
    lg.reset();
    // Drops the registry's loggers and joins spdlog's worker once it has drained the queue.
    spdlog::shutdown();
    kl->flush(std::chrono::milliseconds(LONG_MS));
    kepmlog_logger_stats st = kl->stats();
    const std::uint64_t n = static_cast<std::uint64_t>(threads * per_thread);
    CHECK(st.accepted == n && st.delivered == n && st.dropped == 0, "accepted %" PRIu64 " delivered %" PRIu64 ", want %" PRIu64,
          st.accepted, st.delivered, n);
    size_t got = wait_source(source, static_cast<size_t>(n), LONG_MS);
    CHECK(got == n, "broker has %zu records, want %" PRIu64, got, n);
    // Each thread's records in its order.
    pthread_mutex_lock(&agent.mu);
    std::vector<int> next(threads, 0);
    int out_of_order = 0;
    for (size_t i = 0; i < agent.n_msgs; i++) {
        if (std::strcmp(agent.msgs[i].topic, "KeeperLogger") != 0) continue;
        const jval *meta = j_get(&agent.msgs[i].payload, "MetaData");
        const char *s = j_str(meta, "Source"), *m = j_str(meta, "Message"), *c = j_str(meta, "Category");
        int t = -1, k = -1;
        if (!s || std::strcmp(s, source) != 0) continue;
        if (!m || std::sscanf(m, "t%d-%d", &t, &k) != 2 || t < 0 || t >= threads || k != next[t] || !c ||
            std::strcmp(c, "Async") != 0) {
            out_of_order++;
            continue;
        }
        next[t]++;
    }
    pthread_mutex_unlock(&agent.mu);
    CHECK(out_of_order == 0, "%d records out of order or malformed", out_of_order);
    for (int t = 0; t < threads; t++) CHECK(next[t] == per_thread, "thread %d: %d of %d records", t, next[t], per_thread);
    kl->shutdown(std::chrono::milliseconds(LONG_MS));
}

}  // namespace

int main(int argc, char **argv) {
    const char *vectors = argc > 1 ? argv[1] : "tests/vectors/records.json";
    const char *allow[] = {"KeeperLogger", NULL};
    std::signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (da_start(&agent, allow) != 0) {
        std::printf("not ok - the devagent did not start\n");
        return 1;
    }
    try {
        test_levels();
        test_filtered();
        test_categories();
        test_vectors(vectors);
        test_errors();
        test_async();
    } catch (const std::exception &e) {
        CHECK(false, "uncaught exception: %s", e.what());
    }
    CHECK(da_stop(&agent) == 0, "devagent exited cleanly");
    std::printf("# kepmlog spdlog tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
