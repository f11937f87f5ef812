/*
 * cpg-bench: the bench's client for the corosync reference (afcluster bench --reference
 * corosync). One process per node, started in that node's namespaces next to its corosync,
 * driven by tools/bench/corosync.ts over stdin/stdout, one line each way per command, doing what
 * tools/bench/client-worker.ts does over the bridge protocol, with libcpg instead. The line
 * protocol, the counting and the latency, members and drain commands are bench-worker.h's, shared
 * with afc-bench-worker.c (the same work on afcluster's C client library).
 *
 * Sending is CPG_TYPE_AGREED through cpg_mcast_joined (one IPC round trip to corosync per
 * message, which is CPG's API), retried on CS_ERR_TRY_AGAIN (corosync's flow control) after
 * dispatching what has arrived. RATE_PER_S 0 sends as fast as corosync accepts. A failure is
 * reported as fail=CS (corosync's cs_error_t).
 *
 * Build: cc -O2 -o cpg-bench cpg-bench.c -lcpg (libcpg-dev). Exits when stdin closes.
 */
#define _POSIX_C_SOURCE 200809L

#include <corosync/cpg.h>

#include <sys/uio.h>

#define GROUP_NAME_MAX CPG_MAX_NAME_LENGTH /* read one past the longest, to refuse it */

#include "bench-worker.h"

static cpg_handle_t handle;
static int cpg_fd = -1;
static uint32_t local_nodeid;
static uint32_t local_pid;
static struct cpg_name group;

static int joined(void) { return cpg_fd >= 0; }
static int event_fd(void) { return cpg_fd; }
static void dispatch_ready(void) { cpg_dispatch(handle, CS_DISPATCH_ALL); }

static void on_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t len)
{
    (void)h; (void)g;
    on_message(msg, len, nodeid == local_nodeid && pid == local_pid);
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *g,
                       const struct cpg_address *member_list, size_t member_list_entries,
                       const struct cpg_address *left_list, size_t left_list_entries,
                       const struct cpg_address *joined_list, size_t joined_list_entries)
{
    (void)h; (void)g; (void)member_list; (void)left_list; (void)left_list_entries;
    (void)joined_list; (void)joined_list_entries;
    set_members((int)member_list_entries);
}

static cpg_callbacks_t callbacks = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };

static void print_failure(int fail)
{
    printf(" fail=%d", fail);
}

/* Waits up to timeout_s for corosync to have something for us, then dispatches it all. */
static cs_error_t pump_cs(double timeout_s)
{
    struct pollfd p = { .fd = cpg_fd, .events = POLLIN };
    int ms = timeout_s <= 0 ? 0 : (int)(timeout_s * 1000 + 0.999);
    int ready = poll(&p, 1, ms);
    if (ready < 0 && errno != EINTR)
        return CS_ERR_LIBRARY;
    return ready > 0 ? cpg_dispatch(handle, CS_DISPATCH_ALL) : CS_OK;
}

/* pump_cs as the shared commands want it: 0, or the cs_error_t of a failure (not TRY_AGAIN). */
static int pump(double timeout_s)
{
    cs_error_t r = pump_cs(timeout_s);
    return r == CS_OK || r == CS_ERR_TRY_AGAIN ? 0 : (int)r;
}

/* One agreed multicast, retried while corosync says CS_ERR_TRY_AGAIN (flow control) until deadline. */
static cs_error_t send_cs(struct iovec *iov, double deadline)
{
    for (;;) {
        cs_error_t r = cpg_mcast_joined(handle, CPG_TYPE_AGREED, iov, 1);
        if (r != CS_ERR_TRY_AGAIN)
            return r;
        if (now_s() >= deadline)
            return r;
        /* Our own deliveries are what frees corosync's queue: wait for one (at most 1 ms). */
        r = pump_cs(0.001);
        if (r != CS_OK && r != CS_ERR_TRY_AGAIN)
            return r;
    }
}

static int send_one(const void *buf, size_t len, double deadline)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    cs_error_t r = send_cs(&iov, deadline);
    return r == CS_OK ? 0 : (int)r;
}

static void cmd_throughput(uint32_t ph, size_t size, double warmup_s, double window_s, int send, double rate)
{
    unsigned char *buf = throughput_start(ph, size);
    struct iovec iov = { .iov_base = buf, .iov_len = size };
    double t_start = now_s(), t0 = t_start + warmup_s, end = t0 + window_s, t;
    long sent = 0, written_at_t0 = -1;
    cs_error_t fail = CS_OK;

    if (!buf)
        return;
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
            cs_error_t r = send_cs(&iov, written_at_t0 < 0 ? t0 : end);
            if (r == CS_OK)
                sent++;
            else if (r != CS_ERR_TRY_AGAIN)
                fail = r;
        }
        /* Idle: sleep in poll until a delivery, the window's start, or its end. */
        double idle = rate > 0 ? 0.001 : (written_at_t0 < 0 ? t0 : end) - t;
        cs_error_t r = pump_cs(may_send ? 0 : idle);
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

/* libcpg reports no overrun to bind again after. */
static void after_drain(void) {}

static void leave(void)
{
    if (cpg_fd >= 0) {
        cpg_leave(handle, &group);
        cpg_finalize(handle);
    }
}

int main(void)
{
    return worker_main();
}
