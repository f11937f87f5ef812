/*
 * afc-order-test: the C side of test/integration/c-client.test.ts. Opens a cluster socket,
 * binds GROUP with self-delivery, waits for its own join, then sends N messages (small ones of
 * many sizes, the edges of one datagram, and every K-th one LARGE bytes in parts) as fast as
 * they are accepted, waiting for AFC_EV_WRITABLE after -EAGAIN, while it prints every event it
 * receives, until it has received TOTAL messages. Midway it asks the daemon for its node (a
 * request while messages and replies stream in). Then it checks afc_members and closes.
 * Right after opening it asks afc_quorum (-EOPNOTSUPP below protocol version 3); with
 * --open-only it closes then.
 *
 * usage: afc-order-test SOCKET GROUP --send N --expect TOTAL [--large-every K] [--large-size B]
 *                       [--last-size B] [--version V] [--timeout S]
 *        afc-order-test SOCKET GROUP --open-only [--version V]
 * (--last-size: the last message's size, e.g. more parts than the daemon's socket queue holds;
 *  --version: the highest protocol version to speak, as afc_options.version)
 * stdout: "open N/P/P DRIVER VERSION",
 *         "quorum QUORUM-STATE nodes=ID:VOTES:PRESENT,..." or "quorum ERRNAME",
 *         "membership KIND RING MEMBERS +N/P/P REASON -N/P/P REASON [view RING/SEQ QUORUM-STATE]
 *          [ids=UID:GID:FLAGS,...]" (view from version 3, ids from version 4, one per member),
 *         "quorum-event RING QUORUM-STATE", "message N/P/P ORDER LEN FNV1A32", "error ...",
 *         "members COUNT", "done"
 * where QUORUM-STATE is "votes=V expected=E quorum=Q flags=quorate|not-quorate[,FLAG...]".
 * Exit 0 when it received TOTAL messages and every call succeeded.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "../afcluster.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static void who(const struct afc_member *m) { printf("%" PRIu32 "/%" PRIu32 "/%" PRIu32, m->node_id, m->pid, m->port); }

static void quorum_state(const struct afc_quorum_state *q)
{
    printf("votes=%" PRIu32 " expected=%" PRIu32 " quorum=%" PRIu32 " flags=%s", q->votes, q->expected, q->quorum,
           q->quorate == AFC_QUORATE ? "quorate" : q->quorate == AFC_INQUORATE ? "not-quorate" : "unknown");
    for (uint32_t bit = AFC_QF_QUORATE << 1; bit <= 0x8000u; bit <<= 1) {
        if (!(q->flags & bit)) continue;
        const char *name = afc_quorum_flag_name(bit);
        if (name) printf(",%s", name);
        else printf(",0x%04" PRIx32, bit);
    }
}

/* The quorum line; 0, or -1 when afc_quorum did not do what it should under this version. */
static int print_quorum(struct afc *h)
{
    struct afc_quorum_info info;
    int r = afc_quorum(h, &info);
    if (r < 0) {
        printf("quorum %s\n", afc_errname(r));
        return afc_version(h) < 3 && r == -EOPNOTSUPP ? 0 : -1;
    }
    printf("quorum ");
    quorum_state(&info.state);
    printf(" nodes=");
    for (size_t i = 0; i < info.n_nodes; i++)
        printf("%s%" PRIu32 ":%" PRIu32 ":%d", i ? "," : "", info.nodes[i].node_id, info.nodes[i].votes, info.nodes[i].present);
    printf("\n");
    return afc_version(h) >= 3 && info.state.quorate != AFC_QUORUM_UNKNOWN && info.n_nodes > 0 ? 0 : -1;
}

/* A membership event's version-3 fields: all zero below version 3; else a view of this ring
 * (a regular one) numbered from 1 and a quorum state. 0 or -1. */
static int check_v3_fields(struct afc *h, const struct afc_membership *m)
{
    const struct afc_view_id *v = &m->view_id;
    const struct afc_quorum_state *q = &m->quorum;
    if (afc_version(h) < 3)
        return v->ring.rep == 0 && v->ring.seq == 0 && v->seq == 0 && q->quorate == AFC_QUORUM_UNKNOWN &&
               q->flags == 0 && q->votes == 0 && q->expected == 0 && q->quorum == 0 ? 0 : -1;
    if (q->quorate != ((q->flags & AFC_QF_QUORATE) ? AFC_QUORATE : AFC_INQUORATE) || v->seq == 0) return -1;
    if (m->kind == AFC_REGULAR && (v->ring.rep != m->ring_id.rep || v->ring.seq != m->ring_id.seq)) return -1;
    return 0;
}

/* Message i of n: its length and bytes (c-client.test.ts makes the same ones). */
static size_t make_message(unsigned char *buf, long i, long n, long large_every, size_t large_size, size_t last_size)
{
    /* a container; alone; the largest SEND and the smallest in parts up to version 4; and under version 5 */
    static const size_t edges[] = { 0, 65513, 65514, 65525, 65526, 196598, 196599 };
    size_t len;
    if (last_size > 0 && i == n - 1) len = last_size;
    else if (large_every > 0 && i % large_every == large_every - 1) len = large_size;
    else if (i >= 1 && i <= 7) len = edges[i - 1];
    else len = (size_t)(i * 37 % 1500);
    char prefix[32];
    size_t head = (size_t)snprintf(prefix, sizeof prefix, "c-%ld:", i);
    for (size_t j = 0; j < len; j++) buf[j] = (unsigned char)(i * 7 + j * 13);
    memcpy(buf, prefix, len < head ? len : head);
    return len;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: afc-order-test SOCKET GROUP --send N --expect TOTAL [--large-every K] [--large-size B] [--last-size B] [--version V] [--timeout S]\n"
                        "       afc-order-test SOCKET GROUP --open-only [--version V]\n");
        return 2;
    }
    const char *path = argv[1], *group = argv[2];
    long n_send = 0, expect = 0, large_every = 0;
    size_t large_size = 200 * 1024, last_size = 0;
    double timeout = 60;
    int open_only = 0;
    struct afc_options opts;
    memset(&opts, 0, sizeof opts);
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--open-only")) { open_only = 1; continue; }
        if (i + 1 >= argc) return 2;
        if (!strcmp(argv[i], "--version")) opts.version = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--send")) n_send = atol(argv[++i]);
        else if (!strcmp(argv[i], "--expect")) expect = atol(argv[++i]);
        else if (!strcmp(argv[i], "--large-every")) large_every = atol(argv[++i]);
        else if (!strcmp(argv[i], "--large-size")) large_size = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--last-size")) last_size = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--timeout")) timeout = atof(argv[++i]);
        else return 2;
    }
    struct afc *h = afc_open_opts(path, &opts);
    if (!h) {
        fprintf(stderr, "afc_open %s: %s\n", path, afc_strerror(-errno));
        return 1;
    }
    const struct afc_member *me = afc_self(h);
    printf("open ");
    who(me);
    printf(" %s %d\n", afc_driver(h), afc_version(h));
    if (print_quorum(h) < 0) {
        fprintf(stderr, "afc_quorum under protocol version %d: not what it should be\n", afc_version(h));
        afc_close(h);
        return 1;
    }
    fflush(stdout);
    if (open_only) {
        int r = afc_close(h);
        if (r < 0) { fprintf(stderr, "afc_close: %s\n", afc_strerror(r)); return 1; }
        printf("done\n");
        return 0;
    }
    /* Group names at the edge of one datagram (65524 bytes) and past it: refused, nothing overruns. */
    char *name = malloc(65536);
    if (!name) return 1;
    static const size_t lens[] = { 65524, 65525, 65532 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        memset(name, 'g', len);
        name[len] = '\0';
        int e = afc_bind(h, name, 0);
        if (e != -ENAMETOOLONG) { fprintf(stderr, "afc_bind of a %zu-byte name: %s\n", len, afc_strerror(e)); return 1; }
    }
    free(name);
    int r = afc_bind(h, group, AFC_SELF_DELIVERY);
    if (r < 0) {
        fprintf(stderr, "afc_bind: %s\n", afc_strerror(r));
        return 1;
    }
    size_t cap = 196599; /* the largest of make_message's edges */
    if (large_size > cap) cap = large_size;
    if (last_size > cap) cap = last_size;
    unsigned char *buf = malloc(cap);
    if (!buf) return 1;

    long next = 0, received = 0;
    int joined = 0, blocked = 0, failed = 0, asked = 0;
    uint64_t writables = 0, eagains = 0;
    double deadline = now_s() + timeout;
    while ((received < expect || next < n_send) && !failed) {
        if (now_s() > deadline) {
            fprintf(stderr, "timed out: sent %ld of %ld, received %ld of %ld\n", next, n_send, received, expect);
            failed = 1;
            break;
        }
        while (joined && !blocked && next < n_send) {
            size_t len = make_message(buf, next, n_send, large_every, large_size, last_size);
            r = afc_send(h, buf, len, AFC_AGREED | (next + 1 < n_send ? AFC_MORE : 0));
            if (r == -EAGAIN) { blocked = 1; eagains++; break; }
            if (r < 0) { fprintf(stderr, "afc_send %ld: %s\n", next, afc_strerror(r)); failed = 1; break; }
            next++;
        }
        if (joined && !asked && next >= n_send / 2) { /* a request while sends are in flight and events stream in */
            struct afc_node info;
            asked = 1;
            r = afc_local_node(h, &info);
            if (r < 0 || info.node_id != me->node_id || info.n_nodes == 0) {
                fprintf(stderr, "afc_local_node: %s\n", r < 0 ? afc_strerror(r) : "wrong answer");
                failed = 1;
            }
        }
        struct pollfd pfd = { afc_fd(h), POLLIN, 0 };
        int t = afc_timeout(h);
        (void)poll(&pfd, 1, t >= 0 && t < 1000 ? t : 1000);
        struct afc_event ev;
        while ((r = afc_recv(h, &ev)) > 0) {
            switch (ev.type) {
            case AFC_EV_MESSAGE:
                printf("message ");
                who(&ev.message.sender);
                printf(" %s %zu %08" PRIx32 "\n", afc_order_name(ev.message.order), ev.message.len, fnv1a(ev.message.data, ev.message.len));
                if (strcmp(ev.group, group) != 0 || ev.group_len != strlen(group)) { fprintf(stderr, "wrong group %s\n", ev.group); failed = 1; }
                received++;
                break;
            case AFC_EV_MEMBERSHIP: {
                const struct afc_membership *m = &ev.membership;
                printf("membership %s %" PRIu32 ".%" PRIu64 " %zu", afc_kind_name(m->kind), m->ring_id.rep, m->ring_id.seq, m->n_members);
                for (size_t i = 0; i < m->n_joined; i++) {
                    printf(" +");
                    who(&m->joined[i].member);
                    printf(" %s", afc_reason_name(m->joined[i].reason));
                    if (m->joined[i].member.pid == me->pid && m->joined[i].member.port == me->port) joined = 1;
                }
                for (size_t i = 0; i < m->n_left; i++) {
                    printf(" -");
                    who(&m->left[i].member);
                    printf(" %s", afc_reason_name(m->left[i].reason));
                }
                if (afc_version(h) >= 3) {
                    printf(" view %" PRIu32 ".%" PRIu64 "/%" PRIu32 " ", m->view_id.ring.rep, m->view_id.ring.seq, m->view_id.seq);
                    quorum_state(&m->quorum);
                }
                if (check_v3_fields(h, m) < 0) { fprintf(stderr, "view id or quorum wrong under protocol version %d\n", afc_version(h)); failed = 1; }
                if ((afc_version(h) >= 4) != (m->identities != NULL)) { fprintf(stderr, "identities wrong under protocol version %d\n", afc_version(h)); failed = 1; }
                for (size_t i = 0; m->identities && i < m->n_members; i++)
                    printf("%s%" PRIu32 ":%" PRIu32 ":%" PRIu32, i ? "," : " ids=", m->identities[i].uid, m->identities[i].gid, m->identities[i].flags);
                printf("\n");
                break;
            }
            case AFC_EV_QUORUM:
                printf("quorum-event %" PRIu32 ".%" PRIu64 " ", ev.quorum.ring_id.rep, ev.quorum.ring_id.seq);
                quorum_state(&ev.quorum.state);
                printf("\n");
                if (afc_version(h) < 3 || strcmp(ev.group, group) != 0) { fprintf(stderr, "a quorum event under version %d, group %s\n", afc_version(h), ev.group); failed = 1; }
                break;
            case AFC_EV_WRITABLE:
                blocked = 0;
                writables++;
                break;
            case AFC_EV_ERROR:
                printf("error %s %" PRIu64 " %" PRIu64 " %s\n", afc_errname(ev.error.error), ev.error.first_send, ev.error.n_sends, ev.error.message);
                failed = 1;
                break;
            }
        }
        if (r != -EAGAIN) { fprintf(stderr, "afc_recv: %s\n", afc_strerror(r)); failed = 1; }
        fflush(stdout);
    }
    if (!failed && afc_pending(h) != 0) { fprintf(stderr, "%zu sends pending after every message came back\n", afc_pending(h)); failed = 1; }
    if (!failed && afc_sent(h) != (uint64_t)n_send) { fprintf(stderr, "afc_sent %" PRIu64 " != %ld\n", afc_sent(h), n_send); failed = 1; }
    struct afc_member members[16];
    r = afc_members(h, members, 16);
    if (r < 0) { fprintf(stderr, "afc_members: %s\n", afc_strerror(r)); failed = 1; }
    printf("members %d\n", r);
    fprintf(stderr, "afc-order-test: %ld sent, %ld received, %" PRIu64 " EAGAIN, %" PRIu64 " WRITABLE\n", next, received, eagains, writables);
    r = afc_close(h);
    if (r < 0) { fprintf(stderr, "afc_close: %s\n", afc_strerror(r)); failed = 1; }
    free(buf);
    printf(failed ? "failed\n" : "done\n");
    return failed;
}
