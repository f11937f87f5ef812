/*
 * afc-listen: the C twin of `afcluster listen GROUP` (tools/cmd-listen.ts). Binds a cluster
 * socket to GROUP and prints each message, membership and quorum event as it comes, one per
 * line, in the same format (eventToLine), until Ctrl-C (then it leaves the group) or --count
 * messages. Under protocol version 3 a membership line shows its view id (ring/seq; a
 * transitional one as view_ring/seq>ring) and the node's quorum state, and quorum lines appear.
 * Exits 1 when the daemon goes away (the last line is then an ECONNREFUSED error).
 *
 * usage: afc-listen [--socket PATH | --node N] [--count N] GROUP
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "../afcluster.h"
#include "target.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Like the daemon's keepalive in the TypeScript client: is the daemon still there? */
#define KEEPALIVE_MS 5000

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void who(const struct afc_member *m) { printf("%" PRIu32 "/%" PRIu32 "/%" PRIu32, m->node_id, m->pid, m->port); }
static void ring(const struct afc_ring_id *r) { printf("%" PRIu32 ".%" PRIu64, r->rep, r->seq); }

/* As quorumText: "quorate, 2 of 3 votes, quorum 2, wait_for_all". */
static void quorum_text(const struct afc_quorum_state *q)
{
    printf("%s, %" PRIu32 " of %" PRIu32 " votes, quorum %" PRIu32, q->quorate == AFC_QUORATE ? "quorate" : "NOT quorate",
           q->votes, q->expected, q->quorum);
    int first = 1;
    for (uint32_t bit = AFC_QF_QUORATE << 1; bit <= 0x8000u; bit <<= 1) {
        const char *name = (q->flags & bit) ? afc_quorum_flag_name(bit) : NULL;
        if (!name) continue;
        printf(first ? ", %s" : " %s", name);
        first = 0;
    }
}

/* Valid UTF-8 without control characters other than \n and \t: printed as text (a leading BOM
 * dropped, as TextDecoder does); anything else as hex. Returns where the text starts, or -1. */
static long text_start(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) { cp = c; k = 1; }
        else if (c >= 0xC2 && c <= 0xDF) { cp = c & 0x1F; k = 2; }
        else if (c >= 0xE0 && c <= 0xEF) { cp = c & 0x0F; k = 3; }
        else if (c >= 0xF0 && c <= 0xF4) { cp = c & 0x07; k = 4; }
        else return -1;
        if (n - i < k) return -1;
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return -1;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
        if ((cp < 0x20 && cp != '\n' && cp != '\t') || (cp >= 0x7F && cp <= 0x9F)) return -1;
        i += k;
    }
    return n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF ? 3 : 0;
}

static void print_event(const struct afc_event *ev)
{
    if (ev->type == AFC_EV_MESSAGE) {
        const struct afc_message *m = &ev->message;
        const unsigned char *d = m->data;
        printf("message    %s from ", ev->group);
        who(&m->sender);
        printf(" (%s, %zu bytes): ", afc_order_name(m->order), m->len);
        long t = text_start(d, m->len);
        if (t >= 0) fwrite(d + t, 1, m->len - (size_t)t, stdout);
        else for (size_t i = 0; i < m->len; i++) printf("%02x", d[i]);
        putchar('\n');
    } else if (ev->type == AFC_EV_MEMBERSHIP) {
        const struct afc_membership *m = &ev->membership;
        /* quorate is AFC_QUORUM_UNKNOWN when the event carries no view id or quorum (versions 1 and 2) */
        int v3 = m->quorum.quorate != AFC_QUORUM_UNKNOWN;
        printf("membership %s %s ring ", ev->group, afc_kind_name(m->kind));
        ring(&m->ring_id);
        if (v3) {
            printf(" view ");
            ring(&m->view_id.ring);
            printf("/%" PRIu32, m->view_id.seq);
            if (m->kind == AFC_TRANSITIONAL) {
                putchar('>');
                ring(&m->ring_id);
            }
        }
        printf(": [");
        for (size_t i = 0; i < m->n_members; i++) {
            if (i) putchar(' ');
            who(&m->members[i]);
        }
        putchar(']');
        size_t k = 0;
        for (size_t i = 0; i < m->n_joined; i++, k++) {
            printf(k ? ", +" : " +");
            who(&m->joined[i].member);
            printf(" %s", afc_reason_name(m->joined[i].reason));
        }
        for (size_t i = 0; i < m->n_left; i++, k++) {
            printf(k ? ", -" : " -");
            who(&m->left[i].member);
            printf(" %s", afc_reason_name(m->left[i].reason));
        }
        if (v3) {
            printf(" (");
            quorum_text(&m->quorum);
            putchar(')');
        }
        putchar('\n');
    } else if (ev->type == AFC_EV_QUORUM) {
        printf("quorum     %s ring ", ev->group);
        ring(&ev->quorum.ring_id);
        printf(": ");
        quorum_text(&ev->quorum.state);
        putchar('\n');
    } else if (ev->type == AFC_EV_ERROR) {
        printf("error      %s: %s\n", afc_errname(ev->error.error), ev->error.message);
    }
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: afc-listen [--socket PATH | --node N] [--count N] GROUP\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *socket = NULL, *group = NULL;
    int node = 0;
    long count = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--socket") || !strcmp(argv[i], "-s")) && i + 1 < argc) socket = argv[++i];
        else if ((!strcmp(argv[i], "--node") || !strcmp(argv[i], "-n")) && i + 1 < argc) node = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = atol(argv[++i]);
        else if (argv[i][0] == '-' || group) return usage();
        else group = argv[i];
    }
    if (!group || count < 0 || (node < 0)) return usage();
    char path[4096];
    if (afc_resolve_socket(socket, node, path, sizeof path) < 0) return 2;

    struct afc *h = afc_open(path);
    if (!h) {
        fprintf(stderr, "afc-listen: cannot open a cluster socket on %s: %s\n", path, afc_strerror(-errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int r = afc_bind(h, group, AFC_SELF_DELIVERY);
    if (r < 0) {
        fprintf(stderr, "afc-listen: bind %s: %s\n", group, afc_strerror(r));
        afc_close(h);
        return 1;
    }
    const struct afc_member *me = afc_self(h);
    fprintf(stderr, "listening on %s as %" PRIu32 "/%" PRIu32 "/%" PRIu32 " (driver %s); Ctrl-C to stop\n",
            group, me->node_id, me->pid, me->port, afc_driver(h));

    long messages = 0;
    int status = 0;
    while (!stop && !status) {
        struct pollfd pfd = { afc_fd(h), POLLIN, 0 };
        int t = afc_timeout(h);
        int n = poll(&pfd, 1, t >= 0 && t < KEEPALIVE_MS ? t : KEEPALIVE_MS);
        if (n < 0 && errno != EINTR) { perror("poll"); status = 1; break; }
        if (n == 0 && t < 0) { /* idle: does the daemon still know us? */
            struct afc_node info;
            r = afc_local_node(h, &info);
            if (r == -ECONNREFUSED || r == -EPROTO || r == -ETIMEDOUT) {
                printf("error      ECONNREFUSED: the daemon at %s went away or restarted (%s); open a new socket\n", path, afc_strerror(r));
                status = 1;
                break;
            }
        }
        struct afc_event ev;
        while ((r = afc_recv(h, &ev)) > 0) {
            if (ev.type == AFC_EV_WRITABLE) continue;
            print_event(&ev);
            if (ev.type == AFC_EV_ERROR && ev.error.error == -ECONNREFUSED) { status = 1; break; }
            if (ev.type == AFC_EV_MESSAGE && count > 0 && ++messages >= count) { stop = 1; break; }
        }
        if (r < 0 && r != -EAGAIN && !status) {
            if (r == -ECONNREFUSED) printf("error      ECONNREFUSED: the daemon at %s went away; open a new socket\n", path);
            else fprintf(stderr, "afc-listen: %s\n", afc_strerror(r));
            status = 1;
        }
    }
    fflush(stdout);
    afc_close(h);
    return status;
}
