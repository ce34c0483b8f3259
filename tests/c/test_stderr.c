/*
 * stderr as the last resort, through the C ABI: KEPMLOG_FALLBACK_STDERR without a job id, and
 * the records still undelivered when shutdown's deadline passes. The test points fd 2 at a
 * temporary file around each case and reads back exactly what the library wrote there.
 */
#define _POSIX_C_SOURCE 200809L
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kepmlog.h>

/* devagent.h and json.h hold helpers this program does not all use. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "devagent.h"

#include "check.h"

static devagent agent;

/* fd 2 goes to a temporary file until capture_end, which returns what was written. */
typedef struct {
    char path[64];
    int saved;
} capture;

static void capture_begin(capture *c) {
    int fd;
    snprintf(c->path, sizeof c->path, "/tmp/kepmlog-stderr-XXXXXX");
    fd = mkstemp(c->path);
    fflush(stderr);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(capture *c) {
    FILE *f;
    long n;
    char *text;
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    f = fopen(c->path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = (char *)calloc((size_t)n + 1, 1);
    if (text && n > 0 && fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = '\0';
    fclose(f);
    unlink(c->path);
    return text;
}

/* The lines of `text` that are records, without their 25-byte UTC timestamp
 * ("2026-12-02T01:23:45.678Z "), in `out`; returns how many. Lines starting "kepmlog:" are
 * counted in *diag instead. */
static size_t record_lines(char *text, char **out, size_t cap, size_t *diag) {
    size_t n = 0;
    char *line = text, *end;
    *diag = 0;
    while (line && *line) {
        end = strchr(line, '\n');
        if (end) *end = '\0';
        if (strncmp(line, "kepmlog:", 8) == 0) {
            (*diag)++;
        } else if (n < cap) {
            int timed = strlen(line) > 25 && line[10] == 'T' && line[23] == 'Z' && line[24] == ' ';
            out[n++] = timed ? line + 25 : line;
        }
        line = end ? end + 1 : NULL;
    }
    return n;
}

static uint16_t closed_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void test_fallback(void) {
    kepmlog_options *o = NULL;
    kepmlog_logger *log = NULL, *other = NULL;
    capture c;
    char *text, *lines[32], want[128];
    size_t n, diag, i;
    uint64_t printed = 0;
    bool to_stderr = false;

    printf("# fallback stderr without a job id\n");
    unsetenv("KEEPER_JOB_ID");
    unsetenv("KEPMLOG_FALLBACK");
    CHECK_STATUS(kepmlog_options_new(&o), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_source(o, "CTool"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_logger_new(o, &log), KEPMLOG_ERR_MISSING_JOB_ID);
    CHECK_STATUS(kepmlog_options_set_fallback(o, 7), KEPMLOG_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kepmlog_options_set_fallback_name(o, "console"), KEPMLOG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kepmlog_last_error(), "\"error\", \"stderr\"") != NULL, "fallback names the choices: %s",
          kepmlog_last_error());
    CHECK_STATUS(kepmlog_options_set_fallback_name(o, NULL), KEPMLOG_ERR_NULL_ARGUMENT);
    setenv("KEPMLOG_FALLBACK", "console", 1);
    CHECK_STATUS(kepmlog_logger_new(o, &log), KEPMLOG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kepmlog_last_error(), "KEPMLOG_FALLBACK") != NULL, "names the variable");
    unsetenv("KEPMLOG_FALLBACK");
    CHECK_STATUS(kepmlog_options_set_fallback(o, KEPMLOG_FALLBACK_STDERR), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_fallback_name(o, " Stderr "), KEPMLOG_OK); /* same choice, by name */

    capture_begin(&c);
    CHECK_STATUS(kepmlog_logger_new(o, &log), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_logger_new(o, &other), KEPMLOG_OK);
    for (i = 0; i < 10; i++) {
        snprintf(want, sizeof want, "record %u", (unsigned)i);
        CHECK_STATUS(kepmlog_log(log, KEPMLOG_LEVEL_WARNING, "Finding", want), KEPMLOG_OK);
    }
    CHECK_STATUS(kepmlog_event(other, "{\"phase\":\"done\"}"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_shutdown(log, 100, NULL), KEPMLOG_OK);
    text = capture_end(&c);

    CHECK_STATUS(kepmlog_logger_printed(log, &printed, &to_stderr), KEPMLOG_OK);
    CHECK(printed == 10 && to_stderr, "printed %llu", (unsigned long long)printed);
    n = record_lines(text, lines, 32, &diag);
    CHECK(diag == 1, "one warning for two loggers, got %u", (unsigned)diag);
    CHECK(n == 11, "10 records and an event, got %u", (unsigned)n);
    for (i = 0; i < 10 && i < n; i++) {
        snprintf(want, sizeof want, "Warning  CTool [Finding] record %u", (unsigned)i);
        CHECK(strcmp(lines[i], want) == 0, "line %u: %s", (unsigned)i, lines[i]);
    }
    if (n == 11) CHECK(strcmp(lines[10], "EVENT    CTool {\"phase\":\"done\"}") == 0, "%s", lines[10]);
    free(text);
    CHECK_STATUS(kepmlog_logger_free(&log), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_logger_free(&other), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_free(&o), KEPMLOG_OK);
}

/* 20 records, shutdown with `timeout_ms`; returns what fd 2 received. */
static char *twenty(const char *host, uint16_t port, int with_agent_ca, bool undelivered_on,
                    uint64_t timeout_ms, kepmlog_status want, uint64_t want_printed) {
    kepmlog_options *o = NULL;
    kepmlog_logger *log = NULL;
    capture c;
    char msg[32];
    uint64_t undelivered = 0, printed = 99;
    unsigned i;
    char *text;

    CHECK_STATUS(kepmlog_options_new(&o), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_source(o, "DownTool"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_job_id(o, "stderr-c"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_token(o, "CTest"), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_broker(o, host, port), KEPMLOG_OK);
    if (with_agent_ca) CHECK_STATUS(kepmlog_options_set_ca_bundle(o, agent.ca), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_stderr_diagnostics(o, false), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_set_undelivered_to_stderr(o, undelivered_on), KEPMLOG_OK);
    capture_begin(&c);
    CHECK_STATUS(kepmlog_logger_new(o, &log), KEPMLOG_OK);
    for (i = 0; i < 20; i++) {
        snprintf(msg, sizeof msg, "u %u", i);
        CHECK_STATUS(kepmlog_log(log, KEPMLOG_LEVEL_INFO, "Undelivered", msg), KEPMLOG_OK);
    }
    CHECK_STATUS(kepmlog_shutdown(log, timeout_ms, &undelivered), want);
    text = capture_end(&c);
    CHECK_STATUS(kepmlog_logger_printed(log, &printed, NULL), KEPMLOG_OK);
    CHECK(printed == want_printed, "printed %llu, want %llu", (unsigned long long)printed,
          (unsigned long long)want_printed);
    CHECK_STATUS(kepmlog_logger_free(&log), KEPMLOG_OK);
    CHECK_STATUS(kepmlog_options_free(&o), KEPMLOG_OK);
    return text;
}

static void test_undelivered(void) {
    char *text, *lines[32], want[64];
    size_t n, diag, i;
    uint16_t port = closed_port();

    printf("# broker down: the 20 undelivered records on stderr, in order\n");
    text = twenty("127.0.0.1", port, 0, true, 300, KEPMLOG_ERR_TIMEOUT, 20);
    n = record_lines(text, lines, 32, &diag);
    CHECK(n == 20 && diag == 0, "got %u lines, %u diagnostics", (unsigned)n, (unsigned)diag);
    for (i = 0; i < n && i < 20; i++) {
        snprintf(want, sizeof want, "Info     DownTool [Undelivered] u %u", (unsigned)i);
        CHECK(strcmp(lines[i], want) == 0, "line %u: %s", (unsigned)i, lines[i]);
    }
    free(text);

    printf("# broker down, undelivered_to_stderr off: nothing\n");
    text = twenty("127.0.0.1", port, 0, false, 300, KEPMLOG_ERR_TIMEOUT, 0);
    CHECK(text && text[0] == '\0', "stderr: %s", text ? text : "(unreadable)");
    free(text);

    printf("# broker up: none of them\n");
    text = twenty(agent.broker_host, (uint16_t)agent.broker_port, 1, true, 20000, KEPMLOG_OK, 0);
    CHECK(text && text[0] == '\0', "stderr: %s", text ? text : "(unreadable)");
    free(text);
    CHECK(da_wait(&agent, "KeeperLogger", 20, 20000) >= 20, "the broker got the 20");
}

int main(void) {
    const char *allow[] = {"KeeperLogger", NULL};
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (da_start(&agent, allow) != 0) {
        printf("not ok - the devagent did not start\n");
        return 1;
    }
    test_fallback();
    test_undelivered();
    CHECK(da_stop(&agent) == 0, "devagent exited cleanly");
    printf("# kepmlog stderr tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
