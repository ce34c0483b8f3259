/* kepmlog from C (include/kepmlog.h, linked with the release libkepmlog.a): log N records
 * after one warm-up record, then kepmlog_flush. Prints one JSON result line (see
 * bench/src/lib.rs). Settings from KEPMLOG_BENCH_{HOST,PORT,CA,N,MESSAGE}.
 *
 *   cc -std=c99 -O2 -Iinclude -o bench-c bench/c/bench.c target/release/libkepmlog.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kepmlog.h"

static const char *DEFAULT_MESSAGE =
    "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, "
    "duration 3 ms, status OK ....";

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Peak RSS of this program (VmHWM): ru_maxrss would include the driver's, which Linux
 * carries over fork + exec. */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

static uint64_t cpu_us(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p) {
    size_t i = (size_t)((double)n * p);
    return n == 0 ? 0 : sorted[i < n ? i : n - 1];
}

static int fail(const char *what) {
    /* kepmlog_last_error() text has no quotes or backslashes worth escaping here. */
    printf("{\"peer\":\"kepmlog-c\",\"error\":\"%s: %s\"}\n", what, kepmlog_last_error());
    fprintf(stderr, "kepmlog-c: %s: %s\n", what, kepmlog_last_error());
    return 1;
}

static int check(kepmlog_status s, const char *what) {
    if (s != KEPMLOG_OK) {
        fail(what);
        exit(1);
    }
    return 0;
}

int main(void) {
    const char *host = getenv("KEPMLOG_BENCH_HOST");
    const char *port = getenv("KEPMLOG_BENCH_PORT");
    const char *ca = getenv("KEPMLOG_BENCH_CA");
    const char *n_text = getenv("KEPMLOG_BENCH_N");
    const char *message = getenv("KEPMLOG_BENCH_MESSAGE");
    if (!port || !ca) {
        printf("{\"peer\":\"kepmlog-c\",\"error\":\"KEPMLOG_BENCH_PORT and KEPMLOG_BENCH_CA must be set\"}\n");
        return 1;
    }
    if (!host) host = "127.0.0.1";
    if (!message || !*message) message = DEFAULT_MESSAGE;
    size_t n = n_text ? (size_t)strtoull(n_text, NULL, 10) : 100000;
    if (n == 0) n = 100000;

    kepmlog_options *opts = NULL;
    check(kepmlog_options_new(&opts), "options_new");
    check(kepmlog_options_set_source(opts, "BenchTool"), "set_source");
    check(kepmlog_options_set_job_id(opts, "bench-job"), "set_job_id");
    check(kepmlog_options_set_token(opts, "c"), "set_token");
    check(kepmlog_options_set_broker(opts, host, (uint16_t)atoi(port)), "set_broker");
    check(kepmlog_options_set_ca_bundle(opts, ca), "set_ca_bundle");
    check(kepmlog_options_set_args(opts, 0, NULL), "set_args");
    /* The whole burst fits in the queue; blocking is only a safety net (as in bench-kepmlog). */
    check(kepmlog_options_set_queue_capacity(opts, n > 65536 ? n : 65536), "set_queue_capacity");
    check(kepmlog_options_set_overflow(opts, KEPMLOG_OVERFLOW_BLOCK, 60000), "set_overflow");
    kepmlog_logger *log = NULL;
    check(kepmlog_logger_new(opts, &log), "logger_new");
    (void)!kepmlog_options_free(&opts);

    check(kepmlog_log(log, KEPMLOG_LEVEL_INFO, "Bench", "warm-up"), "warm-up");
    check(kepmlog_flush(log, 30000, NULL), "warm-up flush (is the broker up?)");
    kepmlog_logger_stats before, after;
    check(kepmlog_stats(log, &before), "stats");

    uint64_t *lat = malloc(n * sizeof *lat);
    if (!lat) return 1;
    uint64_t refused = 0;
    uint64_t cpu0 = cpu_us();
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t a = now_ns();
        kepmlog_status s = kepmlog_log(log, KEPMLOG_LEVEL_INFO, "Bench", message);
        lat[i] = now_ns() - a;
        if (s != KEPMLOG_OK) refused++;
    }
    uint64_t undelivered = 0;
    kepmlog_status flushed = kepmlog_flush(log, 300000, &undelivered);
    double secs = (double)(now_ns() - t0) / 1e9;
    uint64_t cpu = cpu_us() - cpu0;
    long maxrss = peak_rss_kb();
    char flush_error[512] = "";
    if (flushed != KEPMLOG_OK)
        snprintf(flush_error, sizeof flush_error, ",\"error\":\"flush: %s\"", kepmlog_status_name(flushed));
    check(kepmlog_stats(log, &after), "stats");
    (void)!kepmlog_shutdown(log, 5000, NULL);
    (void)!kepmlog_logger_free(&log);

    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("{\"peer\":\"kepmlog-c\",\"n\":%zu,\"acked\":%" PRIu64 ",\"secs\":%.6f,\"cpu_us\":%" PRIu64
           ",\"maxrss_kb\":%ld,\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64 ",\"p999_ns\":%" PRIu64
           ",\"refused\":%" PRIu64 ",\"dropped\":%" PRIu64 "%s}\n",
           n, after.delivered - before.delivered, secs, cpu, maxrss, pct(lat, n, 0.5),
           pct(lat, n, 0.99), pct(lat, n, 0.999), refused, after.dropped, flush_error);
    free(lat);
    return flushed == KEPMLOG_OK ? 0 : 1;
}
