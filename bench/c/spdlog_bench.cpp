// Per-call cost of logging through spdlog into kepmlog (include/kepmlog_spdlog.hpp), next to
// the kepmlog C++ logger called directly and spdlog with a file sink on /dev/null. Each mode
// logs N records (after a flushed warm-up record), then flushes: ns/call is the logging loop's
// wall time / N; CPU ns/call is the process's CPU time (CLOCK_PROCESS_CPUTIME_ID: the calling
// thread and kepmlog's worker, which does TLS and MQTT) over the loop and the flush / N; the
// caller's share alone is CLOCK_THREAD_CPUTIME_ID over the loop; out is the records the broker
// acknowledged (for the file sink: written). Settings from
// KEPMLOG_BENCH_{HOST,PORT,CA,N,MESSAGE}, as bench/c/bench.c; not run in CI.
//
//   export PKG_CONFIG_PATH=target/kepmlog-prefix/lib/pkgconfig   # after make -C ffi install
//   c++ -std=c++11 -O2 -Wall -Wextra -Werror -o target/spdlog-bench bench/c/spdlog_bench.cpp
//     $(pkg-config --cflags --libs kepmlog-static spdlog)            (one line)
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include <kepmlog_spdlog.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

namespace {

const char *DEFAULT_MESSAGE =
    "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, "
    "duration 3 ms, status OK ....";

std::uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

struct cost {
    std::uint64_t wall_ns, cpu_ns, thread_ns;
};

struct meter {
    std::uint64_t wall0 = clock_ns(CLOCK_MONOTONIC), cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID),
                  thread0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall_loop = 0, thread_loop = 0;
    void loop_done() {
        wall_loop = clock_ns(CLOCK_MONOTONIC) - wall0;
        thread_loop = clock_ns(CLOCK_THREAD_CPUTIME_ID) - thread0;
    }
    cost done() const { return cost{wall_loop, clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0, thread_loop}; }
};

std::shared_ptr<kepmlog::logger> new_logger(const char *host, int port, const char *ca, const char *token, std::size_t n) {
    kepmlog::options o;
    // The whole burst fits in the queue; blocking is only a safety net (as in bench.c).
    o.source("BenchTool")
        .job_id("bench-job")
        .token(token)
        .broker(host, static_cast<std::uint16_t>(port))
        .ca_bundle(ca)
        .args(0, nullptr)
        .queue_capacity(n > 65536 ? n : 65536)
        .block_when_full(std::chrono::milliseconds(60000));
    auto log = std::make_shared<kepmlog::logger>(o);
    log->info("Bench", "warm-up");
    log->flush(std::chrono::milliseconds(30000));
    return log;
}

void report(const char *mode, std::size_t n, const cost &c, std::uint64_t delivered) {
    std::printf("| %-48s | %8zu | %9.0f | %12.0f | %19.0f | %9" PRIu64 " |\n", mode, n,
                static_cast<double>(c.wall_ns) / static_cast<double>(n), static_cast<double>(c.cpu_ns) / static_cast<double>(n),
                static_cast<double>(c.thread_ns) / static_cast<double>(n), delivered);
}

std::uint64_t delivered_since(const kepmlog::logger &log, std::uint64_t before) { return log.stats().delivered - before; }

}  // namespace

int main() {
    const char *host = std::getenv("KEPMLOG_BENCH_HOST");
    const char *port = std::getenv("KEPMLOG_BENCH_PORT");
    const char *ca = std::getenv("KEPMLOG_BENCH_CA");
    const char *n_text = std::getenv("KEPMLOG_BENCH_N");
    const char *message_env = std::getenv("KEPMLOG_BENCH_MESSAGE");
    if (!port || !ca) {
        std::fprintf(stderr, "spdlog-bench: KEPMLOG_BENCH_PORT and KEPMLOG_BENCH_CA must be set\n");
        return 1;
    }
    if (!host) host = "127.0.0.1";
    std::size_t n = n_text ? static_cast<std::size_t>(std::strtoull(n_text, nullptr, 10)) : 100000;
    if (n == 0) n = 100000;
    const std::string message = message_env && *message_env ? message_env : DEFAULT_MESSAGE;
    const std::string category = "Bench";
    const int flush_ms = 300000;
    try {
        std::printf("| %-48s | %8s | %9s | %12s | %19s | %9s |\n", "mode", "calls", "ns/call", "CPU ns/call",
                    "caller CPU ns/call", "out");
        std::printf("|%s|---------:|----------:|-------------:|--------------------:|----------:|\n",
                    std::string(50, '-').c_str());
        {
            auto log = new_logger(host, std::atoi(port), ca, "direct", n);
            std::uint64_t before = log->stats().delivered;
            meter m;
            for (std::size_t i = 0; i < n; i++) (void)log->info(category, message);
            m.loop_done();
            log->flush(std::chrono::milliseconds(flush_ms));
            report("kepmlog::logger::info (direct)", n, m.done(), delivered_since(*log, before));
            log->shutdown(std::chrono::milliseconds(5000));
        }
        {
            auto log = new_logger(host, std::atoi(port), ca, "spdlog", n);
            spdlog::logger lg(category, std::make_shared<kepmlog::spdlog_sink_mt>(log));
            std::uint64_t before = log->stats().delivered;
            meter m;
            for (std::size_t i = 0; i < n; i++) lg.info("{}", message);
            m.loop_done();
            log->flush(std::chrono::milliseconds(flush_ms));
            report("spdlog::logger + kepmlog::spdlog_sink_mt", n, m.done(), delivered_since(*log, before));
            log->shutdown(std::chrono::milliseconds(5000));
        }
        {
            // spdlog's own cost with its default pattern: the text formatted and written to a file.
            spdlog::logger lg(category, std::make_shared<spdlog::sinks::basic_file_sink_mt>("/dev/null"));
            lg.info("warm-up");
            meter m;
            for (std::size_t i = 0; i < n; i++) lg.info("{}", message);
            m.loop_done();
            lg.flush();
            report("spdlog::logger + basic_file_sink_mt (/dev/null)", n, m.done(), n);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "spdlog-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
