/*
 * secret-scanner-c: a KEPM job tool in C. Scans a directory tree for files that look like
 * they hold plain-text secrets and reports counts and paths (never the secrets) to the
 * agent's KeeperLogger through libkepmlog.
 *
 * Started by the agent as `secret-scanner-c --keeper-api-base=https://127.0.0.1:6889 [DIR]`
 * with KEEPER_JOB_ID in its environment. Build against an installed kepmlog (one binary):
 *   cc -std=c99 -O2 -o secret-scanner-c secret_scanner.c $(pkg-config --cflags --libs kepmlog-static)
 * Windows (MinGW-w64, which has <dirent.h>; scripts/cross.sh builds it this way):
 *   x86_64-w64-mingw32-gcc -std=c99 -O2 -o secret-scanner-c.exe secret_scanner.c $(pkg-config ...)
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kepmlog.h>

#ifdef _WIN32
/* No POSIX symbolic links to step around on Windows: stat does what lstat does elsewhere. */
#define lstat stat
#endif

#define MAX_FILE_BYTES (1024L * 1024L)
#define MAX_FILES 20000

static const char *const MARKERS[] = {
    "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----",     "AKIA",
    "password=",                       "secret_key",
};

struct scan {
    const kepmlog_logger *log;
    long files;
    long flagged;
};

/* Logging is fire-and-forget: a dropped record is counted in the stats, not fatal. */
static void logf_(const kepmlog_logger *log, int level, const char *category, const char *fmt,
                  const char *arg) {
    char text[8192]; /* room for a PATH_MAX path and the words around it */
    snprintf(text, sizeof text, fmt, arg);
    kepmlog_log(log, level, category, text);
}

static int contains_marker(const char *buf, size_t len) {
    size_t m;
    for (m = 0; m < sizeof MARKERS / sizeof MARKERS[0]; m++) {
        size_t k = strlen(MARKERS[m]);
        size_t i;
        for (i = 0; i + k <= len; i++) {
            if (memcmp(buf + i, MARKERS[m], k) == 0) return 1;
        }
    }
    return 0;
}

static void scan_file(struct scan *s, const char *path, const struct stat *st) {
    FILE *f;
    char *buf;
    size_t n;
    if (st->st_size > MAX_FILE_BYTES) return;
    f = fopen(path, "rb");
    if (!f) {
        logf_(s->log, KEPMLOG_LEVEL_DEBUG, "Access", "Skipped %s: cannot open", path);
        return;
    }
    buf = malloc((size_t)st->st_size + 1);
    if (buf) {
        n = fread(buf, 1, (size_t)st->st_size, f);
        if (contains_marker(buf, n)) {
            s->flagged++;
            logf_(s->log, KEPMLOG_LEVEL_WARNING, "Finding", "Possible secret in %s", path);
        }
        free(buf);
    }
    fclose(f);
}

static void walk(struct scan *s, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) {
        logf_(s->log, KEPMLOG_LEVEL_WARNING, "Access", "Cannot read %s", dir);
        return;
    }
    while ((e = readdir(d)) != NULL && s->files < MAX_FILES) {
        char path[4096];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            walk(s, path);
        } else if (S_ISREG(st.st_mode)) {
            s->files++;
            scan_file(s, path, &st);
            if (s->files % 1000 == 0) {
                char ev[128];
                snprintf(ev, sizeof ev, "{\"phase\":\"scan\",\"files\":%ld}", s->files);
                kepmlog_event(s->log, ev);
            }
        }
    }
    closedir(d);
}

/* The first argument that is not a --flag (or the value of --keeper-api-base), else ".". */
static const char *scan_root(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keeper-api-base") == 0) {
            i++;
        } else if (strncmp(argv[i], "--", 2) != 0) {
            return argv[i];
        }
    }
    return ".";
}

int main(int argc, char **argv) {
    kepmlog_options *opts = NULL;
    kepmlog_logger *log = NULL;
    struct scan s = {NULL, 0, 0};
    const char *root = scan_root(argc, argv);
    char summary[256], ev[256];
    uint64_t undelivered = 0;
    kepmlog_status st;

    if (kepmlog_options_new(&opts) != KEPMLOG_OK ||
        kepmlog_options_set_source(opts, "SecretScanner") != KEPMLOG_OK ||
        kepmlog_options_set_default_category(opts, "SecretsScan") != KEPMLOG_OK ||
        kepmlog_options_set_args(opts, argc, (const char *const *)argv) != KEPMLOG_OK ||
        kepmlog_logger_new(opts, &log) != KEPMLOG_OK) {
        fprintf(stderr, "secret-scanner-c: cannot log to KEPM: %s\n", kepmlog_last_error());
        kepmlog_options_free(&opts);
        return 2;
    }
    kepmlog_options_free(&opts);
    s.log = log;

    logf_(log, KEPMLOG_LEVEL_INFO, "Startup", "Scanning %s for plain-text secrets", root);
    kepmlog_event(log, "{\"phase\":\"scan\",\"status\":\"started\"}");
    walk(&s, root);
    snprintf(summary, sizeof summary, "Scan complete: %ld issue(s) detected in %ld file(s).",
             s.flagged, s.files);
    snprintf(ev, sizeof ev, "{\"phase\":\"scan\",\"status\":\"done\",\"files\":%ld,\"issues\":%ld}",
             s.files, s.flagged);
    kepmlog_event(log, ev);
    /* Findings are the report, not a failure of the task: the exit code stays 0. */
    kepmlog_log(log, s.flagged > 0 ? KEPMLOG_LEVEL_WARNING : KEPMLOG_LEVEL_INFO, "SecretsScan",
                summary);

    /* Deliver everything before the agent records the exit code. */
    st = kepmlog_shutdown(log, 10000, &undelivered);
    if (st != KEPMLOG_OK) {
        fprintf(stderr, "secret-scanner-c: %s\n", kepmlog_last_error());
    }
    kepmlog_logger_free(&log);
    return 0;
}
