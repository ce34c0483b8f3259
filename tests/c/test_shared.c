/*
 * C tests of the shared broker connection, against `kepm-devagent serve` (real Mosquitto over
 * TLS): loggers of one process with the same job id and token (so the same client id
 * {jobId}_{token}_{pid}) and the same broker share ONE connection, while each keeps its own
 * Source, queue, statistics, flush and shutdown.
 *   - 2 and 8 loggers, one thread each, log and flush: every record of each logger arrives
 *     (checked by Source and message, in order), each logger's stats say accepted = delivered,
 *     and the broker saw exactly one connection for the client id;
 *   - one logger shut down while another logs on a thread: the other's records all arrive,
 *     still one connection; with every logger gone the next one connects anew.
 *
 * Usage: test_shared   (env KEPM_DEVAGENT: devagent binary,
 *        KEPMLOG_SHARED_RECORDS: records per logger, default 300)
 * Output: one "ok"/"not ok" line per check failure, then "# kepmlog shared C tests: N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kepmlog.h>

/* devagent.h and json.h hold helpers this program does not all use. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "devagent.h"
#include "json.h"

#include "check.h"
#define MAX_LOGGERS 8
#define LONG_MS 30000

static devagent agent;
static long records = 300;

/* A logger of job `job_id` with `source`, token "CShared", pointed at the devagent. */
static kepmlog_logger *new_logger(const char *job_id, const char *source) {
    kepmlog_options *o = NULL;
    kepmlog_logger *log = NULL;
    CHECK_STATUS(kepmlog_options_new(&o), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_source(o, source), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_job_id(o, job_id), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_token(o, "CShared"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_api_base(o, agent.api_base), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_ca_bundle(o, agent.ca), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_logger_new(o, &log), KEPMLOG_OK);
    kepmlog_options_free(&o);
    return log;
}

static void client_id_of(const kepmlog_logger *log, char *out, size_t cap) {
    const char *id = NULL;
    CHECK_STATUS(kepmlog_logger_client_id(log, &id), KEPMLOG_OK);
    snprintf(out, cap, "%s", id ? id : "");
}

/* How many times the broker saw `client_id` connect. */
static size_t connections_of(const char *client_id) {
    size_t i, n = 0;
    pthread_mutex_lock(&agent.mu);
    for (i = 0; i < agent.n_clients; i++) {
        if (strcmp(agent.clients[i], client_id) == 0) n++;
    }
    pthread_mutex_unlock(&agent.mu);
    return n;
}

/* Waits until the broker saw `client_id` connect at least `want` times (or `ms`), then a
 * moment more: the connection lines come from the broker's log and may trail the messages. */
static size_t wait_connections(const char *client_id, size_t want, int ms) {
    struct timespec ts, settle = {0, 500 * 1000000L};
    da_deadline(&ts, ms);
    pthread_mutex_lock(&agent.mu);
    for (;;) {
        size_t i, n = 0;
        for (i = 0; i < agent.n_clients; i++) {
            if (strcmp(agent.clients[i], client_id) == 0) n++;
        }
        if (n >= want || agent.eof || pthread_cond_timedwait(&agent.cv, &agent.mu, &ts) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&agent.mu);
    nanosleep(&settle, NULL);
    return connections_of(client_id);
}

static void print_clients(const char *client_id) {
    size_t i;
    pthread_mutex_lock(&agent.mu);
    printf("# clients seen by the broker (looking for %s):", client_id);
    for (i = 0; i < agent.n_clients; i++) printf(" %s", agent.clients[i]);
    printf("\n");
    pthread_mutex_unlock(&agent.mu);
}

/*
 * Checks that the KeeperLogger messages with MetaData.Source `source` are exactly
 * `prefix`0 .. `prefix`(n-1), in that order. Returns how many matched the expectation.
 */
static long check_source(const char *source, const char *prefix, long n) {
    size_t i;
    long k = 0, extra = 0, wrong = -1;
    char want[96];
    pthread_mutex_lock(&agent.mu);
    for (i = 0; i < agent.n_msgs; i++) {
        const jval *meta;
        const char *s, *m;
        if (strcmp(agent.msgs[i].topic, "KeeperLogger") != 0) continue;
        meta = j_get(&agent.msgs[i].payload, "MetaData");
        s = j_str(meta, "Source");
        if (!s || strcmp(s, source) != 0) continue;
        m = j_str(meta, "Message");
        if (k >= n) {
            extra++;
            continue;
        }
        snprintf(want, sizeof want, "%s%ld", prefix, k);
        if (!m || strcmp(m, want) != 0) {
            if (wrong < 0) wrong = k;
        }
        k++;
    }
    pthread_mutex_unlock(&agent.mu);
    CHECK(k == n && extra == 0, "source %s: broker has %ld of %ld records (+%ld extra)", source, k, n, extra);
    CHECK(wrong < 0, "source %s: record %ld is not %s%ld (order or content)", source, wrong, prefix, wrong);
    return wrong < 0 ? k : 0;
}

struct writer {
    const kepmlog_logger *log;
    char prefix[32];
    long count;
    long ok, other;
    /* Set for a paced writer that keeps going past `count` until *stop: progress and stop
     * are under mu, progress changes are signalled on cv. */
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    long *progress;
    int *stop;
};

static void *writer_thread(void *arg) {
    struct writer *w = (struct writer *)arg;
    long k;
    char msg[96];
    struct timespec pace = {0, 100 * 1000L};
    for (k = 0;; k++) {
        kepmlog_status s;
        if (w->mu) {
            int stop;
            pthread_mutex_lock(w->mu);
            *w->progress = k;
            stop = *w->stop;
            pthread_cond_broadcast(w->cv);
            pthread_mutex_unlock(w->mu);
            if (stop && k >= w->count) break;
            nanosleep(&pace, NULL);
        } else if (k >= w->count) {
            break;
        }
        snprintf(msg, sizeof msg, "%s%ld", w->prefix, k);
        s = kepmlog_log(w->log, KEPMLOG_LEVEL_INFO, "Shared", msg);
        if (s == KEPMLOG_OK) w->ok++;
        else w->other++;
    }
    return NULL;
}

/* `n` loggers, one thread each, `records` records each: one connection, every record. */
static void test_loggers_share_one_connection(int n, const char *job_id) {
    kepmlog_logger *logs[MAX_LOGGERS] = {0};
    struct writer w[MAX_LOGGERS];
    pthread_t th[MAX_LOGGERS];
    char client_id[128], other[128], source[32], prefix[32];
    size_t base = da_count(&agent, "KeeperLogger"), want_total = (size_t)n * (size_t)records, got, conns;
    int i;
    char title[96];
    snprintf(title, sizeof title, "%d loggers of one process share one connection", n);
    SECTION(title);
    for (i = 0; i < n; i++) {
        snprintf(source, sizeof source, "Tool%d-of-%d", i, n);
        logs[i] = new_logger(job_id, source);
        if (!logs[i]) goto out;
    }
    client_id_of(logs[0], client_id, sizeof client_id);
    {
        char want[128];
        snprintf(want, sizeof want, "%s_CShared_%ld", job_id, (long)getpid());
        CHECK(strcmp(client_id, want) == 0, "client id %s, want %s", client_id, want);
    }
    for (i = 1; i < n; i++) {
        client_id_of(logs[i], other, sizeof other);
        CHECK(strcmp(other, client_id) == 0, "logger %d has client id %s, logger 0 %s", i, other, client_id);
    }
    for (i = 0; i < n; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].log = logs[i];
        snprintf(w[i].prefix, sizeof w[i].prefix, "%d-", i);
        w[i].count = records;
        pthread_create(&th[i], NULL, writer_thread, &w[i]);
    }
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].ok == records && w[i].other == 0, "logger %d: %ld ok, %ld failed calls", i, w[i].ok, w[i].other);
    }
    for (i = 0; i < n; i++) {
        uint64_t undelivered = 99;
        kepmlog_logger_stats st;
        CHECK_STATUS(kepmlog_flush(logs[i], LONG_MS, &undelivered), KEPMLOG_OK);
        CHECK(undelivered == 0, "logger %d: %" PRIu64 " undelivered after flush", i, undelivered);
        CHECK_STATUS(kepmlog_stats(logs[i], &st), KEPMLOG_OK);
        CHECK(st.accepted == (uint64_t)records && st.delivered == (uint64_t)records && st.pending == 0 &&
                  st.dropped == 0 && st.reconnects == 0 && st.connected,
              "logger %d stats: accepted %" PRIu64 " delivered %" PRIu64 " pending %" PRIu64
              " dropped %" PRIu64 " reconnects %" PRIu64 " connected %d, want %ld delivered, 0 reconnects",
              i, st.accepted, st.delivered, st.pending, st.dropped, st.reconnects, (int)st.connected, records);
    }
    got = da_wait(&agent, "KeeperLogger", base + want_total, LONG_MS) - base;
    CHECK(got == want_total, "broker received %zu records, want %zu", got, want_total);
    for (i = 0; i < n; i++) {
        snprintf(source, sizeof source, "Tool%d-of-%d", i, n);
        snprintf(prefix, sizeof prefix, "%d-", i);
        check_source(source, prefix, records);
    }
    conns = wait_connections(client_id, 1, LONG_MS);
    printf("# %d loggers: %zu connection(s) of %s\n", n, conns, client_id);
    CHECK(conns == 1, "%d loggers: broker saw %s connect %zu times, want 1", n, client_id, conns);
    if (conns != 1) print_clients(client_id);
out:
    for (i = 0; i < n; i++) {
        if (!logs[i]) continue;
        CHECK_STATUS(kepmlog_shutdown(logs[i], LONG_MS, NULL), KEPMLOG_OK);
        CHECK_STATUS(kepmlog_logger_free(&logs[i]), KEPMLOG_OK);
    }
}

/*
 * A logs a little and is shut down while B logs on a thread; B keeps logging after that, and
 * every record of B arrives over the one connection. A logger created later (C) joins it; once
 * every logger is shut down, the next one (D) opens a second connection.
 */
static void test_shutting_one_down_leaves_the_other_logging(const char *job_id) {
    kepmlog_logger *a, *b, *c = NULL, *d = NULL;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    long progress = 0, before, at_shutdown, total, after = 200, k;
    int stop = 0;
    struct writer w;
    pthread_t th;
    char client_id[128], msg[64];
    uint64_t undelivered = 99;
    kepmlog_logger_stats st;
    size_t conns;
    size_t base = da_count(&agent, "KeeperLogger");
    SECTION("shutting one logger down while another keeps logging");
    a = new_logger(job_id, "LeaveA");
    b = new_logger(job_id, "LeaveB");
    if (!a || !b) goto out;
    client_id_of(b, client_id, sizeof client_id);
    for (k = 0; k < 50; k++) {
        snprintf(msg, sizeof msg, "a %ld", k);
        CHECK_STATUS(kepmlog_log(a, KEPMLOG_LEVEL_INFO, "Leave", msg), KEPMLOG_OK);
    }
    memset(&w, 0, sizeof w);
    w.log = b;
    snprintf(w.prefix, sizeof w.prefix, "b ");
    w.count = records;
    w.mu = &mu;
    w.cv = &cv;
    w.progress = &progress;
    w.stop = &stop;
    pthread_create(&th, NULL, writer_thread, &w);
    /* B's thread logs (paced) from before A's shutdown until well after it returned. */
    pthread_mutex_lock(&mu);
    while (progress < records / 4) pthread_cond_wait(&cv, &mu);
    before = progress;
    pthread_mutex_unlock(&mu);
    CHECK_STATUS(kepmlog_shutdown(a, LONG_MS, &undelivered), KEPMLOG_OK);
    CHECK(undelivered == 0, "A: %" PRIu64 " undelivered at shutdown", undelivered);
    CHECK_STATUS(kepmlog_log(a, KEPMLOG_LEVEL_INFO, "Leave", "a after"), KEPMLOG_ERR_SHUT_DOWN);
    pthread_mutex_lock(&mu);
    at_shutdown = progress;
    /* At least `after` more records once A's shutdown has returned. */
    while (progress < at_shutdown + after) pthread_cond_wait(&cv, &mu);
    stop = 1;
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    total = w.ok;
    printf("# B logged records %ld..%ld during A's shutdown, %ld in all\n", before, at_shutdown, total);
    CHECK(w.other == 0 && total >= at_shutdown + after, "B's thread: %ld ok, %ld failed calls", w.ok, w.other);
    CHECK_STATUS(kepmlog_flush(b, LONG_MS, &undelivered), KEPMLOG_OK);
    CHECK(undelivered == 0, "B: %" PRIu64 " undelivered after flush", undelivered);
    CHECK_STATUS(kepmlog_stats(a, &st), KEPMLOG_OK);
    CHECK(st.accepted == 50 && st.delivered == 50 && st.pending == 0 && st.failed == 0,
          "A stats: accepted %" PRIu64 " delivered %" PRIu64 " failed %" PRIu64, st.accepted, st.delivered, st.failed);
    CHECK_STATUS(kepmlog_stats(b, &st), KEPMLOG_OK);
    CHECK(st.accepted == (uint64_t)total && st.delivered == (uint64_t)total && st.pending == 0 &&
              st.reconnects == 0 && st.connected,
          "B stats: accepted %" PRIu64 " delivered %" PRIu64 " pending %" PRIu64 " reconnects %" PRIu64
          " connected %d, want %ld",
          st.accepted, st.delivered, st.pending, st.reconnects, (int)st.connected, total);
    da_wait(&agent, "KeeperLogger", base + (size_t)(50 + total), LONG_MS);
    check_source("LeaveA", "a ", 50);
    check_source("LeaveB", "b ", total);

    /* A logger created after the others joins the same connection. */
    c = new_logger(job_id, "LeaveC");
    if (!c) goto out;
    CHECK_STATUS(kepmlog_log(c, KEPMLOG_LEVEL_INFO, "Leave", "c 0"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_flush(c, LONG_MS, NULL), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_stats(c, &st), KEPMLOG_OK);
    CHECK(st.delivered == 1 && st.reconnects == 0, "C stats: delivered %" PRIu64 " reconnects %" PRIu64,
          st.delivered, st.reconnects);
    conns = wait_connections(client_id, 1, LONG_MS);
    printf("# A shut down, B and C logging: %zu connection(s) of %s\n", conns, client_id);
    CHECK(conns == 1, "after A's shutdown and C's start: %s connected %zu times, want 1", client_id, conns);
    if (conns != 1) print_clients(client_id);

    /* Every logger gone: the connection closes, the next logger opens a new one. */
    CHECK_STATUS(kepmlog_shutdown(b, LONG_MS, NULL), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_shutdown(c, LONG_MS, NULL), KEPMLOG_OK);
    d = new_logger(job_id, "LeaveD");
    if (!d) goto out;
    CHECK_STATUS(kepmlog_log(d, KEPMLOG_LEVEL_INFO, "Leave", "d 0"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_flush(d, LONG_MS, NULL), KEPMLOG_OK);
    da_wait(&agent, "KeeperLogger", base + (size_t)(50 + total + 2), LONG_MS);
    check_source("LeaveD", "d ", 1);
    conns = wait_connections(client_id, 2, LONG_MS);
    printf("# after every logger shut down, a new one: %zu connection(s) of %s\n", conns, client_id);
    CHECK(conns == 2, "a logger after the last shutdown: %s connected %zu times, want 2", client_id, conns);
    if (conns != 2) print_clients(client_id);
    CHECK_STATUS(kepmlog_shutdown(d, LONG_MS, NULL), KEPMLOG_OK);
out:
    kepmlog_logger_free(&a);
    kepmlog_logger_free(&b);
    kepmlog_logger_free(&c);
    kepmlog_logger_free(&d);
}

int main(void) {
    const char *allow[] = {"KeeperLogger", NULL};
    const char *rec_env = getenv("KEPMLOG_SHARED_RECORDS");
    if (rec_env && atol(rec_env) >= 8) records = atol(rec_env);

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* One devagent for the program: each section uses its own job id, so its own client id
     * and its own connection count. */
    if (da_start(&agent, allow) != 0) {
        printf("not ok - the devagent did not start\n");
        printf("# kepmlog shared C tests: %d passed, %d failed\n", passed, failed + 1);
        return 1;
    }
    test_loggers_share_one_connection(2, "shared-two-c");
    test_loggers_share_one_connection(8, "shared-eight-c");
    test_shutting_one_down_leaves_the_other_logging("shared-leave-c");
    CHECK(da_stop(&agent) == 0, "devagent exited cleanly");
    printf("# kepmlog shared C tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
