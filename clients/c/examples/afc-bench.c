/*
 * afc-bench: one sender, as fast as the daemon accepts, for S seconds per size; prints the
 * figures of `afcluster bench`'s client (tools/bench/client-worker.ts) so the two can be
 * compared: writes (messages the daemon accepted in the window) and TP/s (messages of this run
 * delivered to this node per second, from every sender), MB/s = TP/s x size / 10^6.
 *
 * Messages carry the bench's tag (phase u32, sequence u32, big-endian); the phase is the size,
 * so afc-bench processes started together on several nodes (--members N waits for them) count
 * each other's messages, as `afcluster bench` does with one sender per node.
 *
 * With --latency it measures round trips instead: one message at a time, each sent once the
 * one before it came back to this client, for S seconds per size after --warmup W seconds (0.3);
 * it prints the median and the 99th percentile in microseconds, like the bench's idle latency.
 *
 * usage: afc-bench [--socket PATH | --node N] [--sizes 100,1300,65536] [--seconds S]
 *                  [--order agreed|safe|fifo] [--group NAME] [--members N]
 *                  [--latency] [--warmup W]
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "../afcluster.h"
#include "target.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP_MS 300   /* as tools/bench/driver-bench.ts */
#define QUIET_MS 150    /* after a size: until no delivery for this long (at most DRAIN_MAX_MS) */
#define DRAIN_MAX_MS 5000
#define SIZES_MAX 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct state {
    struct afc *h;
    uint32_t phase;
    int counting, blocked, overrun;
    long delivered;
    size_t members;
    double last_delivery;
    int failed;
    uint32_t want_seq; /* --latency: the sequence of the message in flight, and whether it came */
    int got;
};

/* The message came from this very socket (node, pid and port), not a copy of the tag from elsewhere. */
static int is_self(const struct state *s, const struct afc_member *sender)
{
    const struct afc_member *me = afc_self(s->h);
    return sender->node_id == me->node_id && sender->pid == me->pid && sender->port == me->port;
}

/* Every event waiting (at most `max`): counts this phase's messages. */
static int drain_events(struct state *s, int max)
{
    struct afc_event ev;
    int r = 0;
    for (int i = 0; i < max && (r = afc_recv(s->h, &ev)) > 0; i++) {
        switch (ev.type) {
        case AFC_EV_MESSAGE:
            if (ev.message.len >= 8 && get32(ev.message.data) == s->phase) {
                s->last_delivery = now_s();
                if (s->counting) s->delivered++;
                if (s->want_seq && get32(ev.message.data + 4) == s->want_seq && is_self(s, &ev.message.sender)) s->got = 1;
            }
            break;
        case AFC_EV_MEMBERSHIP:
            s->members = ev.membership.n_members;
            break;
        case AFC_EV_WRITABLE:
            s->blocked = 0;
            break;
        case AFC_EV_ERROR:
            if (ev.error.error == -ENOBUFS) s->overrun = 1;
            else if (ev.error.first_send == 0) { fprintf(stderr, "afc-bench: %s\n", ev.error.message); s->failed = 1; }
            else fprintf(stderr, "afc-bench: %" PRIu64 " sends failed: %s\n", ev.error.n_sends, ev.error.message);
            break;
        }
    }
    if (r < 0 && r != -EAGAIN) { fprintf(stderr, "afc-bench: %s\n", afc_strerror(r)); s->failed = 1; }
    return r;
}

static void wait_events(struct state *s, double until)
{
    struct pollfd pfd = { afc_fd(s->h), POLLIN, 0 };
    int t = afc_timeout(s->h);
    double left = (until - now_s()) * 1000;
    int ms = left <= 0 ? 0 : left > 1000 ? 1000 : (int)left + 1;
    if (t >= 0 && t < ms) ms = t;
    (void)poll(&pfd, 1, ms);
    drain_events(s, 4096);
}

static int usage(void)
{
    fprintf(stderr, "usage: afc-bench [--socket PATH | --node N] [--sizes 100,1300,65536] [--seconds S]\n"
                    "                 [--order agreed|safe|fifo] [--group NAME] [--members N]\n"
                    "                 [--latency] [--warmup W]\n");
    return 2;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of n sorted samples by the nearest rank, as tools/bench/stats.ts. */
static double percentile(const double *sorted, size_t n, double p)
{
    double exact = p / 100 * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact) rank++; /* the ceiling, without libm */
    return sorted[(rank < 1 ? 1 : rank) - 1];
}

/* --latency for one size: round trips of one message at a time; 0, or -1 when one did not come
 * back. It keeps at most 2^20 samples a size (a round trip takes well over S seconds / 2^20 at
 * any S this tool is run with) and says so when it stops there. */
static int latency_size(struct state *s, size_t size, int order, double seconds, double warmup)
{
    size_t cap = 1 << 20, n = 0;
    double *us = malloc(cap * sizeof *us);
    unsigned char *buf = malloc(size);
    if (!us || !buf) { free(us); free(buf); return -1; }
    memset(buf, 'b', size);
    s->phase = (uint32_t)size;
    put32(buf, s->phase);
    uint32_t seq = 0;
    double t_start = now_s(), measure = t_start + warmup, end = measure + seconds;
    int r = 0;
    for (double now = t_start; now < end && n < cap && !s->failed; now = now_s()) {
        put32(buf + 4, ++seq);
        s->want_seq = seq;
        s->got = 0;
        double t0 = now_s();
        r = afc_send(s->h, buf, size, order);
        if (r < 0) { fprintf(stderr, "afc-bench: send: %s\n", afc_strerror(r)); s->failed = 1; break; }
        double give_up = t0 + 5;
        while (!s->got && !s->failed && now_s() < give_up) wait_events(s, give_up);
        if (!s->got) { fprintf(stderr, "afc-bench: message %" PRIu32 " did not come back within 5 s\n", seq); r = -1; break; }
        double t1 = now_s();
        if (t0 >= measure) us[n++] = (t1 - t0) * 1e6;
    }
    s->want_seq = 0;
    if (n > 0) {
        qsort(us, n, sizeof *us, cmp_double);
        printf("%8zu %10zu %9.0f %9.0f%s\n", size, n, percentile(us, n, 50), percentile(us, n, 99), n == cap ? "  (stopped at the sample limit)" : "");
        fflush(stdout);
    }
    free(us);
    free(buf);
    return r < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *socket = NULL, *group = "bench", *sizes_arg = "100,1300,65536";
    int node = 0, order = AFC_AGREED, latency = 0;
    long members = 1;
    double seconds = 3, warmup = WARMUP_MS / 1e3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--latency")) { latency = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--socket") || !strcmp(a, "-s")) socket = v;
        else if (!strcmp(a, "--node") || !strcmp(a, "-n")) node = atoi(v);
        else if (!strcmp(a, "--sizes")) sizes_arg = v;
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--members")) members = atol(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--order")) {
            order = !strcmp(v, "fifo") ? AFC_FIFO : !strcmp(v, "agreed") ? AFC_AGREED : !strcmp(v, "safe") ? AFC_SAFE : -1;
            if (order < 0) return usage();
        } else return usage();
    }
    long sizes[SIZES_MAX];
    int n_sizes = 0;
    for (const char *p = sizes_arg; *p && n_sizes < SIZES_MAX;) {
        char *end;
        sizes[n_sizes] = strtol(p, &end, 10);
        if (end == p || sizes[n_sizes] < 8) return usage(); /* room for the tag */
        n_sizes++;
        p = *end == ',' ? end + 1 : end;
    }
    if (n_sizes == 0 || !(seconds >= 0.1) || members < 1 || !(warmup >= 0)) return usage();
    char path[4096];
    if (afc_resolve_socket(socket, node, path, sizeof path) < 0) return 2;

    struct state s;
    memset(&s, 0, sizeof s);
    s.h = afc_open(path);
    if (!s.h) {
        fprintf(stderr, "afc-bench: cannot open a cluster socket on %s: %s\n", path, afc_strerror(-errno));
        return 1;
    }
    int r = afc_bind(s.h, group, AFC_SELF_DELIVERY);
    if (r < 0) {
        fprintf(stderr, "afc-bench: bind %s: %s\n", group, afc_strerror(r));
        afc_close(s.h);
        return 1;
    }
    double deadline = now_s() + 30;
    while (s.members < (size_t)members && !s.failed && now_s() < deadline) wait_events(&s, deadline);
    if (s.members < (size_t)members) {
        fprintf(stderr, "afc-bench: the group has %zu of %ld members after 30 s\n", s.members, members);
        afc_close(s.h);
        return 1;
    }
    printf("afc-bench: node %" PRIu32 " (driver %s, protocol %d), group %s, %s order, %zu members, %.1f s per size after a %.1f s warm-up\n",
           afc_self(s.h)->node_id, afc_driver(s.h), afc_version(s.h), group, afc_order_name(order), s.members, seconds, latency ? warmup : WARMUP_MS / 1e3);
    if (latency) {
        printf("%8s %10s %9s %9s\n", "size", "samples", "p50 us", "p99 us");
        fflush(stdout);
        for (int k = 0; k < n_sizes && !s.failed; k++) {
            if ((size_t)sizes[k] > afc_message_size_max(s.h)) {
                printf("%8ld  over the daemon's message_size_max (%zu)\n", sizes[k], afc_message_size_max(s.h));
                continue;
            }
            if (latency_size(&s, (size_t)sizes[k], order, seconds, warmup) < 0) s.failed = 1;
        }
        r = afc_close(s.h);
        return s.failed || r < 0 ? 1 : 0;
    }
    printf("%8s %10s %9s %10s %9s\n", "size", "writes", "seconds", "TP/s", "MB/s");
    fflush(stdout);

    for (int k = 0; k < n_sizes && !s.failed; k++) {
        size_t size = (size_t)sizes[k];
        if (size > afc_message_size_max(s.h)) {
            printf("%8zu  over the daemon's message_size_max (%zu)\n", size, afc_message_size_max(s.h));
            continue;
        }
        unsigned char *buf = malloc(size);
        if (!buf) return 1;
        memset(buf, 'a', size);
        s.phase = (uint32_t)size;
        put32(buf, s.phase);
        s.counting = 0;
        s.delivered = 0;
        s.blocked = 0;
        uint32_t seq = 0;
        double t0 = now_s(), start = t0 + WARMUP_MS / 1e3, end = start + seconds, began = start;
        uint64_t accepted0 = 0;
        for (double now = t0; now < end && !s.failed; now = now_s()) {
            if (!s.counting && now >= start) {
                s.counting = 1;
                s.delivered = 0;
                began = now;
                accepted0 = afc_sent(s.h) - afc_pending(s.h);
            }
            while (!s.blocked) {
                put32(buf + 4, ++seq);
                r = afc_send(s.h, buf, size, order | AFC_MORE);
                if (r == -EAGAIN) s.blocked = 1;
                else if (r < 0) { fprintf(stderr, "afc-bench: send: %s\n", afc_strerror(r)); s.failed = 1; break; }
            }
            afc_flush(s.h);
            wait_events(&s, end);
        }
        double elapsed = now_s() - began;
        uint64_t writes = afc_sent(s.h) - afc_pending(s.h) - accepted0;
        s.counting = 0;
        double tp = s.delivered / elapsed;
        printf("%8zu %10" PRIu64 " %9.2f %10.0f %9.2f\n", size, writes, elapsed, tp, tp * (double)size / 1e6);
        fflush(stdout);
        /* quiet before the next size: every accepted message delivered */
        afc_drain(s.h, -1);
        double stop = now_s() + DRAIN_MAX_MS / 1e3;
        s.last_delivery = now_s();
        while (now_s() < stop && now_s() - s.last_delivery < QUIET_MS / 1e3 && !s.failed) wait_events(&s, s.last_delivery + QUIET_MS / 1e3);
        if (s.overrun) { /* fell behind and was removed from the group: join again */
            fprintf(stderr, "afc-bench: this client fell behind at %zu bytes (ENOBUFS); binding again\n", size);
            s.overrun = 0;
            if (afc_bind(s.h, group, AFC_SELF_DELIVERY) < 0) s.failed = 1;
        }
        free(buf);
    }
    r = afc_close(s.h);
    return s.failed || r < 0 ? 1 : 0;
}
