/*
 * Runs `kepm-devagent serve` as a child process for the C tests: reads its JSON lines on a
 * thread, keeps every captured message, and stops it with `quit` at the end.
 */
#ifndef KEPMLOG_TEST_DEVAGENT_H
#define KEPMLOG_TEST_DEVAGENT_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

extern char **environ;

typedef struct {
    char *topic;
    jval payload; /* J_NULL when the payload was not JSON */
} da_message;

typedef struct {
    pid_t pid;
    int to_child;
    FILE *from_child;
    pthread_t reader;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, eof;
    char api_base[256], broker_host[128], ca[512];
    int broker_port;
    da_message *msgs;
    size_t n_msgs, cap_msgs;
    char **clients;
    size_t n_clients;
} devagent;

static void da_deadline(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

static void da_copy(char *dst, size_t cap, const char *src) {
    if (!src) src = "";
    snprintf(dst, cap, "%s", src);
}

static void da_line(devagent *d, const char *line, size_t len) {
    jval v;
    const char *ev;
    if (j_parse(line, len, &v)) return;
    ev = j_str(&v, "event");
    pthread_mutex_lock(&d->mu);
    if (ev && strcmp(ev, "ready") == 0) {
        const jval *port = j_get(&v, "broker_port");
        da_copy(d->api_base, sizeof d->api_base, j_str(&v, "api_base"));
        da_copy(d->broker_host, sizeof d->broker_host, j_str(&v, "broker_host"));
        da_copy(d->ca, sizeof d->ca, j_str(&v, "ca"));
        d->broker_port = port && port->t == J_NUM ? (int)port->num : 0;
        d->ready = 1;
    } else if (ev && strcmp(ev, "message") == 0) {
        jval *payload = NULL;
        size_t i;
        if (d->n_msgs == d->cap_msgs) {
            size_t nc = d->cap_msgs ? d->cap_msgs * 2 : 256;
            da_message *nm = (da_message *)realloc(d->msgs, nc * sizeof *nm);
            if (!nm) goto out;
            d->msgs = nm;
            d->cap_msgs = nc;
        }
        for (i = 0; i < v.n; i++) {
            if (strcmp(v.keys[i], "payload") == 0) payload = &v.items[i];
        }
        d->msgs[d->n_msgs].topic = strdup(j_str(&v, "topic") ? j_str(&v, "topic") : "");
        memset(&d->msgs[d->n_msgs].payload, 0, sizeof(jval));
        if (payload) {
            /* Move the parsed payload out of the line's tree. */
            d->msgs[d->n_msgs].payload = *payload;
            payload->t = J_NULL;
        }
        d->n_msgs++;
    } else if (ev && strcmp(ev, "client") == 0) {
        char **nc = (char **)realloc(d->clients, (d->n_clients + 1) * sizeof *nc);
        if (nc) {
            d->clients = nc;
            d->clients[d->n_clients++] = strdup(j_str(&v, "client_id") ? j_str(&v, "client_id") : "");
        }
    }
out:
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    j_free(&v);
}

static void *da_reader(void *arg) {
    devagent *d = (devagent *)arg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, d->from_child)) > 0) {
        da_line(d, line, (size_t)n);
    }
    free(line);
    pthread_mutex_lock(&d->mu);
    d->eof = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Starts the devagent; `allow` is a NULL-terminated list of topics. 0 when it is ready. */
static int da_start(devagent *d, const char *const *allow) {
    int in[2], out[2], rc, i = 0;
    const char *path = getenv("KEPM_DEVAGENT");
    char *argv[32];
    posix_spawn_file_actions_t fa;
    struct timespec ts;
    memset(d, 0, sizeof *d);
    if (!path || !*path) path = "target/debug/kepm-devagent";
    if (pipe(in) || pipe(out)) return -1;
    argv[i++] = (char *)path;
    argv[i++] = (char *)"serve";
    /* kepmlog's handling of a denial it can see (PUBACK 0x87) is what these tests cover. */
    argv[i++] = (char *)"--deny-visible";
    while (allow && *allow && i < 28) {
        argv[i++] = (char *)"--allow";
        argv[i++] = (char *)*allow++;
    }
    argv[i] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    rc = posix_spawn(&d->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        fprintf(stderr, "cannot start %s: %s (set KEPM_DEVAGENT)\n", path, strerror(rc));
        close(in[1]);
        close(out[0]);
        return -1;
    }
    d->to_child = in[1];
    d->from_child = fdopen(out[0], "r");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    pthread_create(&d->reader, NULL, da_reader, d);
    da_deadline(&ts, 30000);
    pthread_mutex_lock(&d->mu);
    while (!d->ready && !d->eof) {
        if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT) break;
    }
    rc = d->ready ? 0 : -1;
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static size_t da_count(devagent *d, const char *topic) {
    size_t i, n = 0;
    pthread_mutex_lock(&d->mu);
    for (i = 0; i < d->n_msgs; i++) {
        if (strcmp(d->msgs[i].topic, topic) == 0) n++;
    }
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* Messages on KeeperLogger after the first `skip` ones whose MetaData.Category is `category`. */
static size_t da_count_category(devagent *d, size_t skip, const char *category) {
    size_t i, seen = 0, n = 0;
    pthread_mutex_lock(&d->mu);
    for (i = 0; i < d->n_msgs; i++) {
        const char *c;
        if (strcmp(d->msgs[i].topic, "KeeperLogger") != 0 || seen++ < skip) continue;
        c = j_str(j_get(&d->msgs[i].payload, "MetaData"), "Category");
        if (c && strcmp(c, category) == 0) n++;
    }
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* Waits until at least `want` messages on `topic` arrived (or `ms`); returns the count. */
static size_t da_wait(devagent *d, const char *topic, size_t want, int ms) {
    struct timespec ts;
    size_t n;
    da_deadline(&ts, ms);
    for (;;) {
        n = da_count(d, topic);
        if (n >= want) return n;
        pthread_mutex_lock(&d->mu);
        if (d->eof || pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&d->mu);
            return da_count(d, topic);
        }
        pthread_mutex_unlock(&d->mu);
    }
}

/* Waits until the broker has reported a connection of `client_id` (or `ms`): its log line can
   reach the devagent after the client's first messages. Returns 1 when seen. Call unlocked. */
static int da_wait_client(devagent *d, const char *client_id, int ms) {
    struct timespec ts;
    size_t i;
    int found = 0;
    da_deadline(&ts, ms);
    pthread_mutex_lock(&d->mu);
    for (;;) {
        for (i = 0; i < d->n_clients && !found; i++) {
            if (client_id && strcmp(d->clients[i], client_id) == 0) found = 1;
        }
        if (found || d->eof || pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&d->mu);
    return found;
}

static int da_stop(devagent *d) {
    int status = 0;
    size_t i;
    ssize_t w = write(d->to_child, "quit\n", 5);
    (void)w;
    close(d->to_child);
    waitpid(d->pid, &status, 0);
    pthread_join(d->reader, NULL);
    fclose(d->from_child);
    for (i = 0; i < d->n_msgs; i++) {
        free(d->msgs[i].topic);
        j_free(&d->msgs[i].payload);
    }
    free(d->msgs);
    for (i = 0; i < d->n_clients; i++) free(d->clients[i]);
    free(d->clients);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}


#ifndef KEPMLOG_TEST_DEVAGENT_WAIT_CATEGORY
#define KEPMLOG_TEST_DEVAGENT_WAIT_CATEGORY
/* Waits until `want` KeeperLogger records of `category` arrived after the first `skip` (or `ms`). */
static size_t da_wait_category(devagent *d, size_t skip, const char *category, size_t want, int ms) {
    struct timespec ts;
    size_t n;
    da_deadline(&ts, ms);
    for (;;) {
        n = da_count_category(d, skip, category);
        if (n >= want) return n;
        pthread_mutex_lock(&d->mu);
        if (d->eof || pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&d->mu);
            return da_count_category(d, skip, category);
        }
        pthread_mutex_unlock(&d->mu);
    }
}
#endif

#endif
