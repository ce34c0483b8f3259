/*
 * The C test programs' assertions: CHECK counts a pass or prints a TAP-style "not ok" line
 * with the library's last error; each program prints its totals and exits non-zero on any
 * failure. One translation unit per program, so the counters are per program.
 */
#ifndef KEPMLOG_TEST_CHECK_H
#define KEPMLOG_TEST_CHECK_H

#include <stdio.h>

#include <kepmlog.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (cond) {                                                                           \
            passed++;                                                                         \
        } else {                                                                              \
            failed++;                                                                         \
            printf("not ok - %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            printf(__VA_ARGS__);                                                              \
            printf(" (last error: %s)\n", kepmlog_last_error());                             \
        }                                                                                     \
    } while (0)

#define CHECK_STATUS(call, want)                                                              \
    do {                                                                                      \
        kepmlog_status got_ = (call);                                                         \
        CHECK(got_ == (want), "%s returned %s, want %s", #call, kepmlog_status_name(got_),    \
              kepmlog_status_name(want));                                                     \
    } while (0)

#define SECTION(name) printf("# %s\n", name)

#endif
