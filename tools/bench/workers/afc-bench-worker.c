/*
 * afc-bench-worker: the bench's client in C (afcluster bench --client c). One process per node,
 * on that node's daemon socket, driven by tools/bench/cluster.ts over stdin/stdout with the line
 * protocol of bench-worker.h, the same one cpg-bench.c speaks for corosync: the same work as
 * tools/bench/client-worker.ts (the TypeScript library), with afcluster's C client library
 * (clients/c/afcluster.h) instead, so that a row can be read against corosync's with a C client
 * on both sides.
 *
 * Sending keeps the library's window (AFC_SEND_WINDOW, 512, the TypeScript library's default
 * too) in flight: afc_send with AFC_MORE until it answers -EAGAIN, then afc_flush, then waits for
 * AFC_EV_WRITABLE or the daemon's replies. RATE_PER_S 0 sends as fast as the daemon accepts;
 * otherwise at most 64 sends are in flight at once (the TypeScript client's paced depth). Written
 * = messages the daemon accepted during the window. A failure is reported as errno=NAME. A socket
 * removed from its group for falling behind (ENOBUFS) says overrun=1 in that row's reply, and
 * binds again once the row is over (at the drain, which says rebound=1, or as soon as it is told
 * between commands or while waiting for members).
 *
 * usage: afc-bench-worker --socket PATH [--order agreed|safe|fifo]
 * Build (tools/bench/cluster.ts does): cc -O2 -I clients/c -o afc-bench-worker
 *   afc-bench-worker.c clients/c/build/libafcluster.a. Exits when stdin closes.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "afcluster.h"

#define GROUP_NAME_MAX 255 /* the daemon refuses a longer one at bind */
#define PACED_MAX 64

#include "bench-worker.h"

static struct afc *h;
static const char *daemon_path;
static int order = AFC_AGREED;
static char group[GROUP_NAME_MAX + 1];
static int is_joined;
/* afc_send answered -EAGAIN: no more until AFC_EV_WRITABLE. */
static int blocked;
/* The daemon removed this socket from its group (ENOBUFS): bind again at the next drain. */
static int overrun;
/* The first failure seen while receiving (a negative errno), reported by the command it ends. */
static int failed;

static int joined(void) { return is_joined; }
static int event_fd(void) { return afc_fd(h); }

static void print_failure(int fail)
{
    printf(" errno=%s", afc_errname(fail));
}

static int is_self(const struct afc_member *sender)
{
    const struct afc_member *me = afc_self(h);
    return sender->node_id == me->node_id && sender->pid == me->pid && sender->port == me->port;
}

/* Every event waiting: messages counted, members noted, WRITABLE unblocks. */
static void receive(void)
{
    struct afc_event ev;
    int r;
    while ((r = afc_recv(h, &ev)) > 0) {
        switch (ev.type) {
        case AFC_EV_MESSAGE:
            on_message(ev.message.data, ev.message.len, is_self(&ev.message.sender));
            break;
        case AFC_EV_MEMBERSHIP:
            set_members((int)ev.membership.n_members);
            break;
        case AFC_EV_WRITABLE:
            blocked = 0;
            break;
        case AFC_EV_ERROR:
            if (ev.error.error == -ENOBUFS && ev.error.n_sends == 0)
                overrun = 1;
            else if (!failed)
                failed = ev.error.error;
            break;
        }
    }
    if (r < 0 && r != -EAGAIN && !failed)
        failed = r;
}

static void dispatch_ready(void) { receive(); }

/* Waits up to timeout_s (or less when the library has a retry due) for the daemon, then receives. */
static int pump(double timeout_s)
{
    struct pollfd p = { .fd = afc_fd(h), .events = POLLIN };
    int ms = timeout_s <= 0 ? 0 : (int)(timeout_s * 1000 + 0.999);
    int due = afc_timeout(h);
    if (due >= 0 && due < ms)
        ms = due;
    if (poll(&p, 1, ms) < 0 && errno != EINTR)
        return -errno;
    receive();
    int f = failed;
    failed = 0;
    return f;
}

/* One message now (not held for packing), retried after WRITABLE until deadline. */
static int send_one(const void *buf, size_t len, double deadline)
{
    for (;;) {
        int r = afc_send(h, buf, len, order);
        if (r != -EAGAIN)
            return r < 0 ? r : 0;
        blocked = 1;
        while (blocked && now_s() < deadline) {
            int f = pump(deadline - now_s());
            if (f)
                return f;
        }
        if (blocked)
            return -EAGAIN;
    }
}

static void cmd_throughput(uint32_t ph, size_t size, double warmup_s, double window_s, int send, double rate)
{
    unsigned char *buf = throughput_start(ph, size);
    double t_start = now_s(), t0 = t_start + warmup_s, end = t0 + window_s, t;
    uint64_t accepted_at_t0 = 0;
    long sent = 0;
    int started = 0, fail = 0;

    if (!buf)
        return;
    blocked = 0;
    failed = 0;
    while ((t = now_s()) < end) {
        if (!started && t >= t0) {
            started = 1;
            accepted_at_t0 = afc_sent(h) - afc_pending(h);
            delivered = 0;
            counting = 1;
            t0 = t;
        }
        int queued = 0;
        while (send && !fail && !blocked && (rate <= 0 || (sent < (long)((t - t_start) * rate) && afc_pending(h) < PACED_MAX))) {
            int r = afc_send(h, buf, size, order | AFC_MORE);
            if (r == -EAGAIN) {
                blocked = 1;
            } else if (r < 0) {
                fail = r;
            } else {
                sent++;
                queued = 1;
            }
        }
        if (queued)
            afc_flush(h);
        /* Wait for replies (room in the window), deliveries, the window's start or its end. */
        double until = rate > 0 ? 0.001 : (started ? end : t0) - t;
        int f = pump(until);
        if (f && !fail)
            fail = f;
    }
    counting = 0;
    t = now_s();
    uint64_t accepted = afc_sent(h) - afc_pending(h);
    if (!started)
        accepted_at_t0 = accepted;
    free(buf);
    printf("throughput written=%" PRIu64 " delivered=%ld elapsed_us=%.0f", accepted - accepted_at_t0, delivered, (t - t0) * 1e6);
    if (fail)
        print_failure(fail);
    if (overrun)
        printf(" overrun=1"); /* removed from the group during the row: it binds again at the drain */
    reply("%s", "");
}

static void after_drain(void)
{
    if (!overrun)
        return;
    overrun = 0;
    set_members(0);
    int r = afc_bind(h, group, AFC_SELF_DELIVERY);
    if (r < 0)
        fprintf(stderr, "afc-bench-worker: bind %s again: %s\n", group, afc_strerror(r));
    rebound = 1;
}

static void cmd_join(const char *name)
{
    if (is_joined) {
        reply("error already joined");
        return;
    }
    if (strlen(name) > GROUP_NAME_MAX - 1) {
        reply("error group name too long");
        return;
    }
    h = afc_open(daemon_path);
    if (!h) {
        reply("error cannot open a cluster socket on %s: %s: is the daemon running?", daemon_path, afc_strerror(-errno));
        return;
    }
    int r = afc_bind(h, name, AFC_SELF_DELIVERY);
    if (r < 0) {
        afc_close(h);
        h = NULL;
        reply("error bind %s: %s", name, afc_strerror(r));
        return;
    }
    strcpy(group, name);
    is_joined = 1;
    reply("ready nodeid=%" PRIu32 " pid=%" PRIu32, afc_self(h)->node_id, (uint32_t)getpid());
}

static void leave(void)
{
    if (h)
        afc_close(h);
    h = NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--socket"))
            daemon_path = argv[i + 1];
        else if (!strcmp(argv[i], "--order")) {
            const char *v = argv[i + 1];
            order = !strcmp(v, "fifo") ? AFC_FIFO : !strcmp(v, "agreed") ? AFC_AGREED : !strcmp(v, "safe") ? AFC_SAFE : -1;
        } else
            daemon_path = NULL, i = argc;
    }
    if (!daemon_path || order < 0 || argc % 2 == 0) {
        fprintf(stderr, "usage: afc-bench-worker --socket PATH [--order agreed|safe|fifo]\n");
        return 2;
    }
    return worker_main();
}
