/*
 * bench-worker.h: what the bench's two C clients share, cpg-bench.c (libcpg, the corosync
 * reference) and afc-bench-worker.c (the afcluster C client library): the line protocol on
 * stdin/stdout that tools/bench/cpg-protocol.ts speaks, the counting state, and the commands that
 * only wait, receive and time (members, latency, drain). Each program includes it once, after
 * defining GROUP_NAME_MAX, and defines (after it) what it must provide:
 *
 *   GROUP_NAME_MAX                          the longest group name read (cmd_join refuses
 *                                           one over its own limit: read at least one more)
 *   static int joined(void);                1 once join succeeded
 *   static int event_fd(void);              the fd that polls readable when something arrives
 *   static void dispatch_ready(void);       handle what has arrived, between commands
 *   static void cmd_join(const char *name); replies "ready nodeid=N pid=P" or "error TEXT"
 *   static void cmd_throughput(...);        replies "throughput ..." (sending differs most)
 *   static int pump(double timeout_s);      waits up to timeout_s, handles what arrived; 0 or a failure
 *   static int send_one(const void *buf, size_t len, double deadline);
 *                                           one message, retried under flow control until
 *                                           deadline; 0 or a failure
 *   static void print_failure(int fail);    the reply's failure field (" fail=..." or " errno=...")
 *   static void after_drain(void);          once quiet, before drain replies, and between commands
 *                                           and while waiting for members (bind again after an
 *                                           overrun, setting `rebound`)
 *   static void leave(void);                leave the group and close, before exit
 *
 * and calling on_message() for each message delivered and set_members() at each membership
 * change. Commands and replies:
 *
 *   join GROUP                              -> ready nodeid=N pid=P
 *   members N TIMEOUT_MS                    -> members n=N
 *   throughput PHASE SIZE WARMUP_MS WINDOW_MS SEND RATE_PER_S
 *                                           -> throughput written=W delivered=D elapsed_us=E [failure]
 *   latency PHASE SIZE WARMUP_MS WINDOW_MS SAMPLES_MAX [INTERVAL_US]
 *                                           -> latency samples_us=A,B,... [failure] [lost=SEQ]
 *   drain QUIET_MS MAX_MS                   -> drained [rebound=1]
 *   quit                                    -> closed (then exits)
 *   anything that goes wrong                -> error TEXT
 *
 * Messages carry the bench's tag (phase u32, sequence u32, big-endian;
 * tools/bench/client-protocol.ts); a node counts the deliveries of the current phase during the
 * window, its own included. Latency sends one message at a time and times it until it is
 * delivered back to this process; with INTERVAL_US (0 or absent: back to back) each round trip
 * starts that long after the one before started, or at once if that one took longer.
 */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the including program provides (see the top). */
static int joined(void);
static int event_fd(void);
static void dispatch_ready(void);
static void cmd_join(const char *name);
static void cmd_throughput(uint32_t ph, size_t size, double warmup_s, double window_s, int send, double rate);
static int pump(double timeout_s);
static int send_one(const void *buf, size_t len, double deadline);
static void print_failure(int fail);
static void after_drain(void);
static void leave(void);

#define TAG_BYTES 8
#define LINE_MAX_BYTES 512
#define LATENCY_TIMEOUT_S 5.0
#define SAMPLES_MAX 1000000
#define INTERVAL_MAX_US 1000000 /* the longest latency INTERVAL_US taken: a second */
#define SIZE_MAX_BYTES (1 << 20)

/* Counting state of the current phase (written by on_message). */
static uint32_t phase;
static int counting;
static long delivered;
static double last_delivery;
static int members;
/* Latency: the sequence number awaited back from this process, 0 when none. */
static uint32_t awaiting;
static int came_back;
/* The node removed this client from its group for falling behind (ENOBUFS): it joined again. */
static int rebound;

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

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* A message delivered to this process; from_self: sent by this very process. */
static void on_message(const unsigned char *m, size_t len, int from_self)
{
    last_delivery = now_s();
    if (len < TAG_BYTES || get32(m) != phase)
        return;
    if (counting)
        delivered++;
    if (awaiting != 0 && from_self && get32(m + 4) == awaiting) {
        awaiting = 0;
        came_back = 1;
    }
}

static void set_members(int n)
{
    members = n;
}

static unsigned char *message(size_t size, unsigned char fill)
{
    unsigned char *buf = malloc(size);
    if (buf)
        memset(buf, fill, size);
    return buf;
}

/* A throughput command's start: its message (tagged with the phase, sequence 0) and the counting
 * reset; NULL after replying the error when there is no memory for it. */
static unsigned char *throughput_start(uint32_t ph, size_t size)
{
    unsigned char *buf = message(size, 0x61);
    if (!buf) {
        reply("error out of memory for a %zu-byte message", size);
        return NULL;
    }
    put32(buf, ph);
    put32(buf + 4, 0);
    phase = ph;
    counting = 0;
    delivered = 0;
    return buf;
}

/* Sleeps until the monotonic time t (seconds, as now_s() reads it). */
static void sleep_until(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Round trips of one message at a time; prints them as one line (printf's buffer grows with it). */
static void cmd_latency(uint32_t ph, size_t size, double warmup_s, double window_s, long samples_max, double interval_s)
{
    unsigned char *buf = message(size, 0x62);
    double measure_from = now_s() + warmup_s, end = measure_from + window_s;
    double *samples = malloc(sizeof(double) * (size_t)samples_max);
    long n = 0;
    uint32_t seq, lost = 0;
    int fail = 0;

    if (!buf || !samples) {
        free(buf);
        free(samples);
        reply("error out of memory for the latency samples");
        return;
    }
    phase = ph;
    for (seq = 1; now_s() < end && n < samples_max; seq++) {
        put32(buf, ph);
        put32(buf + 4, seq);
        awaiting = seq;
        came_back = 0;
        double t0 = now_s();
        fail = send_one(buf, size, t0 + LATENCY_TIMEOUT_S);
        if (fail)
            break;
        while (!came_back && !fail && now_s() - t0 < LATENCY_TIMEOUT_S)
            fail = pump(t0 + LATENCY_TIMEOUT_S - now_s());
        if (fail)
            break;
        if (!came_back) {
            lost = seq;
            break;
        }
        double t1 = now_s();
        if (t0 >= measure_from)
            samples[n++] = (t1 - t0) * 1e6;
        if (interval_s > 0 && t0 + interval_s > now_s())
            sleep_until(t0 + interval_s);
    }
    awaiting = 0;
    printf("latency samples_us=");
    for (long i = 0; i < n; i++)
        printf(i ? ",%.1f" : "%.1f", samples[i]);
    if (fail)
        print_failure(fail);
    if (lost)
        printf(" lost=%" PRIu32, lost);
    reply("%s", "");
    free(samples);
    free(buf);
}

static void cmd_members(int want, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    while (members < want && now_s() < deadline) {
        after_drain(); /* removed from the group while waiting: bind again */
        int fail = pump(deadline - now_s());
        if (fail) {
            printf("error receiving failed while waiting for %d members:", want);
            print_failure(fail);
            reply("%s", "");
            return;
        }
    }
    if (members < want)
        reply("error the group has %d of %d members after %.0f ms", members, want, timeout_s * 1000);
    else
        reply("members n=%d", members);
}

static void cmd_drain(double quiet_s, double max_s)
{
    double t = now_s(), end = t + max_s;
    last_delivery = t;
    while ((t = now_s()) < end && t - last_delivery < quiet_s)
        pump(0.02);
    after_drain();
    if (rebound)
        reply("drained rebound=1");
    else
        reply("drained");
    rebound = 0;
}

static int valid_size(unsigned long size)
{
    return size >= TAG_BYTES && size <= SIZE_MAX_BYTES;
}

/* One command line; returns 0 after quit. */
static int command(char *line)
{
    char name[GROUP_NAME_MAX + 1];
    char scan[32];
    unsigned long ph, size, a, b, c, d, e = 0;
    double rate;
    int n, got;

    snprintf(scan, sizeof scan, "join %%%ds", GROUP_NAME_MAX);
    if (sscanf(line, scan, name) == 1) {
        cmd_join(name);
    } else if (!joined() && strcmp(line, "quit") != 0) {
        reply("error join first");
    } else if (sscanf(line, "members %d %lu", &n, &a) == 2) {
        cmd_members(n, a / 1000.0);
    } else if (sscanf(line, "throughput %lu %lu %lu %lu %lu %lf", &ph, &size, &a, &b, &c, &rate) == 6 && valid_size(size)) {
        cmd_throughput((uint32_t)ph, size, a / 1000.0, b / 1000.0, c != 0, rate);
    } else if ((got = sscanf(line, "latency %lu %lu %lu %lu %lu %lu", &ph, &size, &a, &b, &d, &e)) >= 5 && valid_size(size) && d > 0 && d <= SAMPLES_MAX && e <= INTERVAL_MAX_US) {
        cmd_latency((uint32_t)ph, size, a / 1000.0, b / 1000.0, (long)d, got == 6 ? e / 1e6 : 0);
    } else if (sscanf(line, "drain %lu %lu", &a, &b) == 2) {
        cmd_drain(a / 1000.0, b / 1000.0);
    } else if (strcmp(line, "quit") == 0) {
        reply("closed");
        return 0;
    } else {
        reply("error unknown or malformed command: %.80s", line);
    }
    return 1;
}

/* Commands from stdin until quit or until stdin closes (the bench went away). */
static int worker_main(void)
{
    char line[LINE_MAX_BYTES];
    size_t used = 0;
    int go = 1;

    while (go) {
        int fd = joined() ? event_fd() : -1;
        struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
        if (poll(p, fd < 0 ? 1 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* Between commands deliveries still arrive (other nodes' drains): keep the queue to us empty.
         * A removal from the group said then (ENOBUFS, after this worker's drain) binds again at
         * once (after_drain), or the other workers would wait for this one in vain. */
        if (fd >= 0 && (p[1].revents & POLLIN)) {
            dispatch_ready();
            after_drain();
        }
        if (!(p[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = read(0, line + used, sizeof(line) - 1 - used);
        if (got <= 0)
            break;
        used += (size_t)got;
        line[used] = '\0';
        char *nl;
        while (go && (nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            go = command(line);
            used -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, used + 1);
        }
        if (used == sizeof(line) - 1) {
            reply("error command line too long");
            used = 0;
        }
    }
    leave();
    return 0;
}

#endif
