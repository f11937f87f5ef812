/*
 * cpg-bench: the bench's client for the corosync reference (afcluster bench --reference
 * corosync). One process per node, started in that node's namespaces next to its corosync,
 * driven by tools/bench/corosync.ts over stdin/stdout, one line each way per command, doing what
 * tools/bench/client-worker.ts does over the bridge protocol, with libcpg instead:
 *
 *   join GROUP                              -> ready nodeid=N pid=P
 *   members N TIMEOUT_MS                    -> members n=N
 *   throughput PHASE SIZE WARMUP_MS WINDOW_MS SEND RATE_PER_S
 *                                           -> throughput written=W delivered=D elapsed_us=E [fail=CS]
 *   latency PHASE SIZE WARMUP_MS WINDOW_MS SAMPLES_MAX [INTERVAL_US]
 *                                           -> latency samples_us=A,B,... [fail=CS] [lost=SEQ]
 *   drain QUIET_MS MAX_MS                   -> drained
 *   quit                                    -> closed (then exits)
 *   anything that goes wrong                -> error TEXT
 *
 * Sending is CPG_TYPE_AGREED through cpg_mcast_joined (one IPC round trip to corosync per
 * message, which is CPG's API), retried on CS_ERR_TRY_AGAIN (corosync's flow control) after
 * dispatching what has arrived. RATE_PER_S 0 sends as fast as corosync accepts. Messages carry the
 * bench's tag (phase u32, sequence u32, big-endian; tools/bench/client-protocol.ts); a node counts
 * the deliveries of the current phase during the window, its own included. Latency sends one
 * message at a time and times it until corosync delivers it back to this process; with
 * INTERVAL_US (0 or absent: back to back) each round trip starts that long after the one before
 * started, or at once if that one took longer.
 *
 * Build: cc -O2 -o cpg-bench cpg-bench.c -lcpg (libcpg-dev). Exits when stdin closes.
 */
#define _POSIX_C_SOURCE 200809L

#include <corosync/cpg.h>

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#define TAG_BYTES 8
#define LINE_MAX_BYTES 512
#define LATENCY_TIMEOUT_S 5.0
#define SAMPLES_MAX 1000000
#define INTERVAL_MAX_US 1000000 /* the longest latency INTERVAL_US taken: a second */
#define SIZE_MAX_BYTES (1 << 20)

static cpg_handle_t handle;
static int cpg_fd = -1;
static uint32_t local_nodeid;
static uint32_t local_pid;
static struct cpg_name group;

/* Counting state of the current phase (written by the deliver callback). */
static uint32_t phase;
static int counting;
static long delivered;
static double last_delivery;
static int members;
/* Latency: the sequence number awaited back from this process, 0 when none. */
static uint32_t awaiting;
static int came_back;

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

static void on_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t len)
{
    const unsigned char *m = msg;
    (void)h; (void)g;
    last_delivery = now_s();
    if (len < TAG_BYTES || get32(m) != phase)
        return;
    if (counting)
        delivered++;
    if (awaiting != 0 && nodeid == local_nodeid && pid == local_pid && get32(m + 4) == awaiting) {
        awaiting = 0;
        came_back = 1;
    }
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *g,
                       const struct cpg_address *member_list, size_t member_list_entries,
                       const struct cpg_address *left_list, size_t left_list_entries,
                       const struct cpg_address *joined_list, size_t joined_list_entries)
{
    (void)h; (void)g; (void)member_list; (void)left_list; (void)left_list_entries;
    (void)joined_list; (void)joined_list_entries;
    members = (int)member_list_entries;
}

static cpg_callbacks_t callbacks = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };

/* Waits up to timeout_s for corosync to have something for us, then dispatches it all. */
static cs_error_t pump(double timeout_s)
{
    struct pollfd p = { .fd = cpg_fd, .events = POLLIN };
    int ms = timeout_s <= 0 ? 0 : (int)(timeout_s * 1000 + 0.999);
    int ready = poll(&p, 1, ms);
    if (ready < 0 && errno != EINTR)
        return CS_ERR_LIBRARY;
    return ready > 0 ? cpg_dispatch(handle, CS_DISPATCH_ALL) : CS_OK;
}

/* One agreed multicast, retried while corosync says CS_ERR_TRY_AGAIN (flow control) until deadline. */
static cs_error_t send_one(struct iovec *iov, double deadline)
{
    for (;;) {
        cs_error_t r = cpg_mcast_joined(handle, CPG_TYPE_AGREED, iov, 1);
        if (r != CS_ERR_TRY_AGAIN)
            return r;
        if (now_s() >= deadline)
            return r;
        /* Our own deliveries are what frees corosync's queue: wait for one (at most 1 ms). */
        r = pump(0.001);
        if (r != CS_OK && r != CS_ERR_TRY_AGAIN)
            return r;
    }
}

static unsigned char *message(size_t size, unsigned char fill)
{
    unsigned char *buf = malloc(size);
    if (buf)
        memset(buf, fill, size);
    return buf;
}

static void cmd_throughput(uint32_t ph, size_t size, double warmup_s, double window_s, int send, double rate)
{
    unsigned char *buf = message(size, 0x61);
    struct iovec iov = { .iov_base = buf, .iov_len = size };
    double t_start = now_s(), t0 = t_start + warmup_s, end = t0 + window_s, t;
    long sent = 0, written_at_t0 = -1;
    cs_error_t fail = CS_OK;

    if (!buf) {
        reply("error out of memory for a %zu-byte message", size);
        return;
    }
    put32(buf, ph);
    put32(buf + 4, 0);
    phase = ph;
    counting = 0;
    delivered = 0;
    while ((t = now_s()) < end) {
        if (written_at_t0 < 0 && t >= t0) {
            written_at_t0 = sent;
            delivered = 0;
            counting = 1;
            t0 = t;
        }
        int may_send = send && fail == CS_OK && (rate <= 0 || sent < (long)((t - t_start) * rate));
        if (may_send) {
            /* Flow control may hold a send past the window's start: count from there on time. */
            cs_error_t r = send_one(&iov, written_at_t0 < 0 ? t0 : end);
            if (r == CS_OK)
                sent++;
            else if (r != CS_ERR_TRY_AGAIN)
                fail = r;
        }
        /* Idle: sleep in poll until a delivery, the window's start, or its end. */
        double idle = rate > 0 ? 0.001 : (written_at_t0 < 0 ? t0 : end) - t;
        cs_error_t r = pump(may_send ? 0 : idle);
        if (r != CS_OK && r != CS_ERR_TRY_AGAIN && fail == CS_OK)
            fail = r;
    }
    counting = 0;
    t = now_s();
    if (written_at_t0 < 0)
        written_at_t0 = sent;
    free(buf);
    if (fail != CS_OK)
        reply("throughput written=%ld delivered=%ld elapsed_us=%.0f fail=%d", sent - written_at_t0, delivered, (t - t0) * 1e6, (int)fail);
    else
        reply("throughput written=%ld delivered=%ld elapsed_us=%.0f", sent - written_at_t0, delivered, (t - t0) * 1e6);
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
    struct iovec iov = { .iov_base = buf, .iov_len = size };
    double measure_from = now_s() + warmup_s, end = measure_from + window_s;
    double *samples = malloc(sizeof(double) * (size_t)samples_max);
    long n = 0;
    uint32_t seq, lost = 0;
    cs_error_t fail = CS_OK;

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
        fail = send_one(&iov, t0 + LATENCY_TIMEOUT_S);
        if (fail != CS_OK)
            break;
        while (!came_back && now_s() - t0 < LATENCY_TIMEOUT_S) {
            fail = pump(t0 + LATENCY_TIMEOUT_S - now_s());
            if (fail != CS_OK && fail != CS_ERR_TRY_AGAIN)
                break;
            fail = CS_OK;
        }
        if (fail != CS_OK)
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
    if (fail != CS_OK)
        printf(" fail=%d", (int)fail);
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
        cs_error_t r = pump(deadline - now_s());
        if (r != CS_OK && r != CS_ERR_TRY_AGAIN) {
            reply("error cpg_dispatch failed (cs_error %d) while waiting for %d members", (int)r, want);
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
    reply("drained");
}

static void cmd_join(const char *name)
{
    cs_error_t r;
    if (strlen(name) >= CPG_MAX_NAME_LENGTH) {
        reply("error group name too long");
        return;
    }
    if ((r = cpg_initialize(&handle, &callbacks)) != CS_OK) {
        reply("error cpg_initialize failed (cs_error %d): is corosync running in this namespace?", (int)r);
        return;
    }
    cpg_fd_get(handle, &cpg_fd);
    cpg_local_get(handle, &local_nodeid);
    local_pid = (uint32_t)getpid();
    strcpy(group.value, name);
    group.length = (uint32_t)strlen(name);
    while ((r = cpg_join(handle, &group)) == CS_ERR_TRY_AGAIN)
        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
    if (r != CS_OK) {
        cpg_finalize(handle);
        cpg_fd = -1;
        reply("error cpg_join failed (cs_error %d)", (int)r);
    } else
        reply("ready nodeid=%" PRIu32 " pid=%" PRIu32, local_nodeid, local_pid);
}

static int valid_size(unsigned long size)
{
    return size >= TAG_BYTES && size <= SIZE_MAX_BYTES;
}

/* One command line; returns 0 after quit. */
static int command(char *line)
{
    char name[CPG_MAX_NAME_LENGTH + 1];
    unsigned long ph, size, a, b, c, d, e = 0;
    double rate;
    int n, got;

    if (sscanf(line, "join %128s", name) == 1) {
        cmd_join(name);
    } else if (cpg_fd < 0 && strcmp(line, "quit") != 0) {
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

int main(void)
{
    char line[LINE_MAX_BYTES];
    size_t used = 0;
    int go = 1;

    while (go) {
        struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = cpg_fd, .events = POLLIN } };
        if (poll(p, cpg_fd < 0 ? 1 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* Between commands deliveries still arrive (other nodes' drains): keep corosync's queue to us empty. */
        if (cpg_fd >= 0 && (p[1].revents & POLLIN))
            cpg_dispatch(handle, CS_DISPATCH_ALL);
        if (!(p[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = read(0, line + used, sizeof(line) - 1 - used);
        if (got <= 0)
            break; /* the bench went away */
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
    if (cpg_fd >= 0) {
        cpg_leave(handle, &group);
        cpg_finalize(handle);
    }
    return 0;
}
