/*
 * afcluster.c: the cluster socket for C programs (afcluster.h), written from docs/PROTOCOL.md.
 *
 * One handle = one unix datagram socket bound to its own path. Three paths through it:
 *
 * - Sends (section 9 of the protocol). afc_send() copies the message into the send ring
 *   (at most AFC_SEND_WINDOW messages, AFC_SEND_BYTES_MAX bytes) and pump() hands the ring's
 *   unsent messages to the daemon packed into BATCH containers, without waiting for replies.
 *   Replies come in request order: an accepted message leaves the ring; the first refused one
 *   (EAGAIN) pauses the ring, and the daemon's fence refuses every later one. Once nothing is
 *   in flight and the daemon said WRITABLE (or AFC_RETRY_MS passed), the refused messages go
 *   again in order, the first with RESUME. A message above one datagram goes as SEND_PART
 *   parts, alone: after everything before it is accepted, before anything after it.
 * - Requests (bind, members, ...) wait for their reply in poll(); events that arrive meanwhile
 *   are kept (raw, in the defer queue) for afc_recv().
 * - Events. afc_recv() returns kept events first, then the rest of the last container read,
 *   then reads the socket. decode_event() is the one place that reads an event's fields.
 *
 * While events wait inside the handle, the socket must still poll readable: the handle sends
 * itself a one-byte datagram (a wake-up), which afc_recv() reads and drops.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "afcluster.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- the wire (docs/PROTOCOL.md sections 2-4, 6, 9-12) ---- */

#define MAGIC0 0x41
#define MAGIC1 0x46
#define HEADER 8
#define DGRAM_MAX 65535        /* a datagram up to version 4; a container or a request always */
#define LARGE_DGRAM_MAX 196608 /* version 5: a SEND, a SEND_PART, a MESSAGE or a MESSAGE_PART */
#define LARGE_SNDBUF 196640    /* the send buffer a 196608-byte datagram needs (SO_SNDBUF) */
#define OP_HELLO 0x01
#define OP_CLOSE 0x02
#define OP_BIND 0x03
#define OP_UNBIND 0x04
#define OP_SEND 0x05
#define OP_MEMBERS 0x06
#define OP_LOCAL_NODE 0x07
#define OP_SEND_PART 0x09
#define OP_QUORUM 0x0A
#define REPLY_BIT 0x80
#define OP_PROTOCOL_ERROR 0xFF
#define EV_MESSAGE 0x41
#define EV_MEMBERSHIP 0x42
#define EV_ERROR 0x43
#define EV_MESSAGE_PART 0x44
#define EV_WRITABLE 0x45
#define OP_BATCH 0x46
#define EV_MEMBERSHIP_V3 0x47
#define EV_QUORUM 0x48
#define EV_MEMBERSHIP_V4 0x49
#define SEND_HEAD 10                           /* header, order, flags */
#define PART_HEAD 22                           /* header, order, flags, msg_id, total, offset */
/* The payload of one SEND and of one SEND_PART: 65525 and 65513 bytes, 196598 and 196586 under version 5. */
#define SEND_DATA_MAX(h) ((h)->dgram_max - SEND_HEAD)
#define PART_DATA_MAX(h) ((h)->dgram_max - PART_HEAD)
#define BATCH_HEAD 10                          /* header, count */
#define SEND_RESUME 0x01
#define STATUS_EAGAIN 11
#define STATUS_EPROTO 71
#define STATUS_ECONNREFUSED 111

#define DEFAULT_TIMEOUT_MS 10000
#define CLOSE_TIMEOUT_MS 2000
#define SNDBUF_BYTES (1 << 20)
#define ERRQ_MAX 64
#define SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

enum { S_UNSENT, S_INFLIGHT, S_REFUSED, S_DONE };

struct sendent {
    unsigned char *data;
    size_t len;
    uint64_t seq;     /* afc_sent() number */
    int64_t sent_at;  /* ms, when it went (in flight) */
    uint32_t id;      /* request id while in flight (small messages) */
    uint8_t state;
    uint8_t order;
    uint8_t large;    /* over one datagram: SEND_PART */
};

/* A send failure or a local error, waiting to be returned by afc_recv(). */
struct lerror {
    int error;
    uint64_t first, n;
    char text[120];
};

struct afc {
    int fd;
    int version;           /* 1 to 5, after HELLO */
    size_t dgram_max;      /* DGRAM_MAX, or LARGE_DGRAM_MAX under version 5 */
    int timeout_ms;
    struct sockaddr_un daemon, self_addr;
    socklen_t daemon_len, self_len;
    char client_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct afc_member self;
    char driver[64];
    size_t msg_max;
    uint32_t next_id, next_msg_id;
    int dead;              /* 0, or the negative errno every call returns from now on */
    int dead_reported;     /* afc_recv returned the error event that says so */
    char dead_text[160];

    /* send ring */
    struct sendent ring[AFC_SEND_WINDOW];
    unsigned head, count;  /* entries [0, count) from head, oldest first */
    unsigned n_sent;       /* entries [0, n_sent) were handed over; the rest are unsent */
    unsigned n_inflight;   /* small sends handed over and not answered */
    size_t bytes;          /* small messages' bytes in the ring */
    size_t unsent_bytes;   /* encoded size of unsent small messages (for AFC_MORE) */
    uint64_t sent;         /* afc_send() calls that returned 0 */
    int large_held;
    int paused, writable_seen, resume_next;
    int probe;             /* resumed without WRITABLE: one datagram until one is accepted */
    int tx_blocked;        /* the daemon's queue was full: retry at tx_retry_at, or when it answers */
    int64_t tx_retry_at;
    int64_t resume_at;     /* ms; 0: not armed */
    int retry_ms;          /* version 1: the next pause's delay (1 to AFC_RETRY_MS) */
    int want_writable;     /* bit 1: a small send was refused, bit 2: a large one */
    int app_writable;      /* an AFC_EV_WRITABLE to return */
    struct {               /* the large message at the ring's head, going out in parts */
        uint32_t msg_id;
        size_t off;        /* bytes handed over in this attempt */
        uint32_t *ids;     /* request id of each part sent */
        size_t ids_cap, sent_parts, answered;
        int err;
        int64_t last_tx;
    } lg;

    /* requests */
    uint32_t wait_id;
    int got_reply;
    unsigned char *reply;  /* the awaited reply, copied */
    size_t reply_len;
    unsigned char *qbuf;   /* a request being sent */

    /* receiving */
    unsigned char *rbuf;   /* the last datagram read */
    const unsigned char *inbox; /* the rest of a container in rbuf: inbox_count items */
    unsigned inbox_count;
    unsigned char *dq;     /* the defer queue: records of u32 length + one datagram */
    size_t dq_cap, dq_head, dq_tail;
    int overrun;
    int wake_out;          /* a wake-up datagram is on its way to ourselves */
    unsigned char *obuf;   /* containers being built */
    struct lerror errq[ERRQ_MAX];
    unsigned errq_head, errq_n;
    uint64_t bad;          /* datagrams from the daemon that did not decode */

    /* decoded fields an event points to */
    char *gbuf; size_t gbuf_cap;
    char *tbuf; size_t tbuf_cap;
    struct afc_member *mem; size_t mem_cap;
    struct afc_identity *ids; size_t ids_cap;
    struct afc_change *chg; size_t chg_cap;
    struct {               /* a large message arriving in MESSAGE_PART events */
        int active;
        uint32_t msg_id;
        size_t total, received;
        struct afc_member sender;
        int order;
        char *group; size_t group_len, group_cap;
        unsigned char *buf; size_t cap;
    } part;
    char *ln_driver; size_t ln_driver_cap;
    uint32_t *ln_nodes; size_t ln_nodes_cap;
    struct afc_quorum_node *q_nodes; size_t q_nodes_cap;
};

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void header(unsigned char *p, int version, int op, uint32_t id)
{
    p[0] = MAGIC0; p[1] = MAGIC1; p[2] = (unsigned char)version; p[3] = (unsigned char)op;
    put32(p + 4, id);
}

/* Grow *buf to at least `need` bytes (doubling); 0 or -ENOMEM. */
static int grow(void **buf, size_t *cap, size_t need, size_t unit)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *p = realloc(*buf, n * unit);
    if (!p) return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static uint32_t alloc_id(struct afc *h)
{
    if (++h->next_id == 0) h->next_id = 1;
    return h->next_id;
}

static struct sendent *at(struct afc *h, unsigned i) { return &h->ring[(h->head + i) % AFC_SEND_WINDOW]; }

static void push_error(struct afc *h, int err, uint64_t seq, const char *text)
{
    if (h->errq_n > 0 && seq != 0) { /* consecutive sends failing alike: one event */
        struct lerror *last = &h->errq[(h->errq_head + h->errq_n - 1) % ERRQ_MAX];
        if (last->error == err && last->n > 0 && last->first + last->n == seq) { last->n++; return; }
    }
    if (h->errq_n == ERRQ_MAX) return; /* nobody reads: the oldest ones stay */
    struct lerror *e = &h->errq[(h->errq_head + h->errq_n++) % ERRQ_MAX];
    e->error = err;
    e->first = seq;
    e->n = seq ? 1 : 0;
    snprintf(e->text, sizeof e->text, "%s", text);
}

/* The daemon is gone (its socket refuses) or said it stops: every call fails from now on.
 * afc_recv says so once, in an error event: its own (`why`), or the daemon's (why == NULL). */
static void die(struct afc *h, int err, const char *why)
{
    if (h->dead) return;
    h->dead = err;
    if (why) snprintf(h->dead_text, sizeof h->dead_text, "%s: %s; open a new socket", why, afc_strerror(err));
    else h->dead_reported = 1;
}

/* One datagram (iov) to the daemon: 0, -EAGAIN when its queue is full, or a fatal -errno. */
static int transmit_iov(struct afc *h, struct iovec *iov, int n)
{
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &h->daemon;
    m.msg_namelen = h->daemon_len;
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    for (;;) {
        if (sendmsg(h->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return -EAGAIN;
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTSOCK) return -ECONNREFUSED;
        if (errno == EPERM) return -EACCES;
        return -errno;
    }
}

static int transmit(struct afc *h, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return transmit_iov(h, &iov, 1);
}

static void transmit_failed(struct afc *h, int err)
{
    if (err == -EAGAIN) { h->tx_blocked = 1; h->tx_retry_at = now_ms() + 1; return; }
    die(h, err, "cannot reach the daemon");
}

/* ---- the send ring ---- */

static void check_writable(struct afc *h)
{
    if (!h->want_writable || h->dead) return;
    int small_ok = h->count <= AFC_SEND_WINDOW / 2 && h->bytes <= AFC_SEND_BYTES_MAX / 2;
    int large_ok = !h->large_held && h->count < AFC_SEND_WINDOW;
    if ((h->want_writable & 1) && !small_ok) return;
    if ((h->want_writable & 2) && !large_ok) return;
    h->want_writable = 0;
    h->app_writable = 1;
}

static void free_entry(struct afc *h, struct sendent *e)
{
    if (e->large) h->large_held = 0;
    else h->bytes -= e->len;
    free(e->data);
    e->data = NULL;
}

/* Entries done at the head leave the ring. */
static void advance_head(struct afc *h)
{
    while (h->count > 0 && at(h, 0)->state == S_DONE) {
        free_entry(h, at(h, 0));
        h->head = (h->head + 1) % AFC_SEND_WINDOW;
        h->count--;
        if (h->n_sent > 0) h->n_sent--;
    }
    check_writable(h);
}

static void fail_entry(struct afc *h, struct sendent *e, int err)
{
    char text[120];
    snprintf(text, sizeof text, "send failed: %s", afc_strerror(err));
    push_error(h, err, e->seq, text);
    e->state = S_DONE;
}

static void pause_sends(struct afc *h)
{
    if (h->paused) return;
    h->paused = 1;
    h->writable_seen = 0;
    h->resume_at = 0;
}

/* Refused and unsent messages go again, in order, the first datagram with RESUME (a SEND, or from
 * version 4 a large message's first part). */
static void pump(struct afc *h, int all);
static void resume_sends(struct afc *h)
{
    unsigned j = 0;
    /* Without the daemon's WRITABLE the cluster may still refuse: resend one message (or a large
     * one's first part) and the rest once it is accepted, not everything only to be refused. */
    h->probe = !h->writable_seen;
    h->paused = 0;
    h->writable_seen = 0;
    h->resume_at = 0;
    h->unsent_bytes = 0;
    for (unsigned i = 0; i < h->count; i++) {
        struct sendent e = *at(h, i);
        if (e.state == S_DONE) { free_entry(h, &e); continue; }
        e.state = S_UNSENT;
        if (!e.large) h->unsent_bytes += 2 + SEND_HEAD + e.len;
        *at(h, j++) = e;
    }
    h->count = j;
    h->n_sent = 0;
    h->resume_next = h->version >= 2;
    if (h->version < 2) h->retry_ms = h->retry_ms * 2 > AFC_RETRY_MS ? AFC_RETRY_MS : h->retry_ms * 2;
    check_writable(h);
    pump(h, 1);
}

static int large_outstanding(const struct afc *h) { return h->lg.sent_parts > h->lg.answered; }

static void maybe_resume(struct afc *h, int64_t now)
{
    if (!h->paused || h->dead || h->n_inflight > 0 || large_outstanding(h)) return;
    if (h->writable_seen) { resume_sends(h); return; }
    if (h->resume_at == 0) {
        h->resume_at = now + (h->version >= 2 ? AFC_RETRY_MS : h->retry_ms);
        return;
    }
    if (now >= h->resume_at) resume_sends(h);
}

static int large_start(struct afc *h, struct sendent *e)
{
    size_t parts = (e->len + PART_DATA_MAX(h) - 1) / PART_DATA_MAX(h);
    if (grow((void **)&h->lg.ids, &h->lg.ids_cap, parts, sizeof(uint32_t)) < 0) return -ENOMEM;
    if (++h->next_msg_id == 0) h->next_msg_id = 1;
    h->lg.msg_id = h->next_msg_id;
    h->lg.off = 0;
    h->lg.sent_parts = h->lg.answered = 0;
    h->lg.err = 0;
    e->state = S_INFLIGHT;
    h->n_sent = 1;
    return 0;
}

/* The large message at the head: its next parts, as many as the daemon's queue takes. */
static void large_pump(struct afc *h, struct sendent *e)
{
    unsigned char head[PART_HEAD];
    while (!h->lg.err && h->lg.off < e->len && !(h->probe && h->lg.sent_parts > 0)) {
        size_t n = e->len - h->lg.off;
        if (n > PART_DATA_MAX(h)) n = PART_DATA_MAX(h);
        uint32_t id = alloc_id(h);
        header(head, 1, OP_SEND_PART, id);
        head[8] = e->order;
        /* Version 4: the fence covers parts, and the first part after a refusal lifts it. Up to
         * version 3 a part with RESUME is refused (EINVAL): the next SEND carries it then. */
        head[9] = h->version >= 4 && h->resume_next && h->lg.off == 0 ? SEND_RESUME : 0;
        put32(head + 10, h->lg.msg_id);
        put32(head + 14, (uint32_t)e->len);
        put32(head + 18, (uint32_t)h->lg.off);
        struct iovec iov[2] = { { head, PART_HEAD }, { e->data + h->lg.off, n } };
        int r = transmit_iov(h, iov, 2);
        if (r < 0) { transmit_failed(h, r); return; }
        h->lg.ids[h->lg.sent_parts++] = id;
        if (head[9]) h->resume_next = 0;
        h->lg.off += n;
        h->lg.last_tx = now_ms();
    }
}

/* Hand unsent messages to the daemon. `all` = 0 (AFC_MORE): only full containers go. */
static void pump(struct afc *h, int all)
{
    if (h->dead || h->paused) return;
    if (h->tx_blocked && now_ms() < h->tx_retry_at) return;
    h->tx_blocked = 0;
    if (h->count > 0 && at(h, 0)->large && at(h, 0)->state == S_INFLIGHT) {
        large_pump(h, at(h, 0)); /* its next parts; nothing after it goes before it is accepted */
        return;
    }
    while (h->n_sent < h->count) {
        struct sendent *e = at(h, h->n_sent);
        if (e->large) {
            if (h->n_sent > 0) return; /* after every earlier message is accepted */
            if (large_start(h, e) < 0) { fail_entry(h, e, -ENOMEM); advance_head(h); continue; }
            large_pump(h, e);
            return;
        }
        if ((h->version < 2 || h->probe) && h->n_inflight > 0) return; /* version 1 has no fence */
        /* how many fit one datagram (sizes only: nothing is copied for a container held back) */
        size_t pos = BATCH_HEAD;
        unsigned k = 0;
        int full = 0;
        for (unsigned j = h->n_sent; j < h->count; j++, k++) {
            struct sendent *s = at(h, j);
            size_t need = 2 + SEND_HEAD + s->len;
            if (s->large || ((h->version < 2 || h->probe) && k == 1) || pos + need > DGRAM_MAX) { full = 1; break; }
            pos += need;
        }
        if (!full && !all) return; /* AFC_MORE: wait for a full container */
        int64_t now = now_ms();
        int r;
        if (k == 0) { /* one message too big for a container (65514 bytes up to SEND_DATA_MAX): alone */
            unsigned char head[SEND_HEAD];
            e->id = alloc_id(h);
            header(head, 1, OP_SEND, e->id);
            head[8] = e->order;
            head[9] = h->resume_next ? SEND_RESUME : 0;
            struct iovec iov[2] = { { head, SEND_HEAD }, { e->data, e->len } };
            r = transmit_iov(h, iov, 2);
            k = 1;
        } else {
            unsigned char *b = h->obuf;
            pos = BATCH_HEAD;
            for (unsigned i = 0; i < k; i++) {
                struct sendent *s = at(h, h->n_sent + i);
                s->id = alloc_id(h);
                put16(b + pos, (unsigned)(SEND_HEAD + s->len));
                header(b + pos + 2, 1, OP_SEND, s->id);
                b[pos + 10] = s->order;
                b[pos + 11] = (h->resume_next && i == 0) ? SEND_RESUME : 0;
                memcpy(b + pos + 12, s->data, s->len);
                pos += 2 + SEND_HEAD + s->len;
            }
            if (k == 1) {
                r = transmit(h, b + BATCH_HEAD + 2, pos - BATCH_HEAD - 2);
            } else {
                header(b, 2, OP_BATCH, 0);
                put16(b + 8, k);
                r = transmit(h, b, pos);
            }
        }
        if (r < 0) { transmit_failed(h, r); return; }
        for (unsigned i = 0; i < k; i++) {
            struct sendent *s = at(h, h->n_sent + i);
            s->state = S_INFLIGHT;
            s->sent_at = now;
            h->unsent_bytes -= 2 + SEND_HEAD + s->len;
        }
        h->n_sent += k;
        h->n_inflight += k;
        h->resume_next = 0;
    }
}

/* The daemon answered a pipelined SEND. */
static void send_reply(struct afc *h, uint32_t id, unsigned status)
{
    unsigned i;
    for (i = 0; i < h->n_sent; i++) {
        struct sendent *e = at(h, i);
        if (e->state == S_INFLIGHT && !e->large && e->id == id) break;
    }
    if (i == h->n_sent) return; /* not ours any more (timed out) */
    for (unsigned j = 0; j < i; j++) { /* replies come in order: earlier ones were lost */
        struct sendent *e = at(h, j);
        if (e->state == S_INFLIGHT && !e->large) { fail_entry(h, e, -ETIMEDOUT); h->n_inflight--; }
    }
    struct sendent *e = at(h, i);
    h->n_inflight--;
    if (status == 0) {
        e->state = S_DONE;
        h->probe = 0;
        if (h->version < 2) h->retry_ms = 1;
    } else if (status == STATUS_EAGAIN) {
        e->state = S_REFUSED;
        pause_sends(h);
    } else {
        fail_entry(h, e, -(int)status);
    }
    advance_head(h);
}

static void large_finish(struct afc *h, struct sendent *e)
{
    int err = h->lg.err;
    h->lg.sent_parts = h->lg.answered = 0;
    if (err == 0) e->state = S_DONE;
    else if (err == -EAGAIN) { e->state = S_REFUSED; pause_sends(h); }
    else fail_entry(h, e, err);
    advance_head(h);
}

/* The daemon answered a part of the large message at the head. */
static void part_reply(struct afc *h, uint32_t id, unsigned status)
{
    if (h->count == 0) return;
    struct sendent *e = at(h, 0);
    if (!e->large || e->state != S_INFLIGHT) return;
    size_t k;
    for (k = h->lg.answered; k < h->lg.sent_parts && h->lg.ids[k] != id; k++) {}
    if (k == h->lg.sent_parts) return;
    if (k > h->lg.answered && !h->lg.err) h->lg.err = -ETIMEDOUT;
    h->lg.answered = k + 1;
    if (status != 0 && !h->lg.err) h->lg.err = -(int)status;
    if (status == 0) h->probe = 0; /* the rest of the parts go (pump) */
    if (h->lg.answered == h->lg.sent_parts && (h->lg.err || h->lg.off == e->len)) large_finish(h, e);
}

/* Sends older than the timeout fail with ETIMEDOUT (their reply was lost, or the daemon hangs). */
static void check_timeouts(struct afc *h, int64_t now)
{
    for (unsigned i = 0; i < h->n_sent && h->n_inflight > 0; i++) {
        struct sendent *e = at(h, i);
        if (e->state != S_INFLIGHT || e->large) continue;
        if (now - e->sent_at < h->timeout_ms) break;
        fail_entry(h, e, -ETIMEDOUT);
        h->n_inflight--;
    }
    if (large_outstanding(h) && now - h->lg.last_tx >= h->timeout_ms) {
        if (!h->lg.err) h->lg.err = -ETIMEDOUT;
        large_finish(h, at(h, 0));
    }
    advance_head(h);
}

/* Timers and the ring, at every call that may wait or read. */
static void service(struct afc *h)
{
    if (h->dead) return;
    int64_t now = now_ms();
    if (h->n_inflight > 0 || large_outstanding(h)) check_timeouts(h, now);
    maybe_resume(h, now);
    pump(h, 1);
}

/* ---- receiving ---- */

enum { ITEM_DONE = 0, ITEM_EVENT = 1 };

static void daemon_writable(struct afc *h)
{
    if (h->paused) h->writable_seen = 1;
}

/* A reply, WRITABLE, or an event (returned as ITEM_EVENT for the caller to decode or keep). */
static int handle_item(struct afc *h, const unsigned char *p, size_t n)
{
    if (n < HEADER || p[0] != MAGIC0 || p[1] != MAGIC1 || p[2] < 1 || p[2] > AFC_PROTOCOL_VERSION) { h->bad++; return ITEM_DONE; }
    int op = p[3];
    uint32_t id = get32(p + 4);
    if (op & REPLY_BIT) {
        if (n < HEADER + 2) { h->bad++; return ITEM_DONE; }
        unsigned status = get16(p + 8);
        if (op == (OP_SEND | REPLY_BIT)) send_reply(h, id, status);
        else if (op == (OP_SEND_PART | REPLY_BIT)) part_reply(h, id, status);
        else if (h->wait_id != 0 && id == h->wait_id && !h->got_reply) {
            memcpy(h->reply, p, n);
            h->reply_len = n;
            h->got_reply = 1;
        }
        return ITEM_DONE;
    }
    switch (op) {
    case EV_WRITABLE:
        daemon_writable(h);
        return ITEM_DONE;
    case EV_ERROR:
        /* The daemon stops: nothing more will come. The event itself still goes to the caller. */
        if (n >= HEADER + 2 && get16(p + 8) == STATUS_ECONNREFUSED) die(h, -ECONNREFUSED, NULL);
        return ITEM_EVENT;
    case EV_MESSAGE:
    case EV_MEMBERSHIP:
    case EV_MESSAGE_PART:
    case EV_MEMBERSHIP_V3:
    case EV_MEMBERSHIP_V4:
    case EV_QUORUM:
        return h->overrun ? ITEM_DONE : ITEM_EVENT; /* after a gap, nothing until bind */
    default:
        h->bad++;
        return ITEM_DONE;
    }
}

/* A container (section 9): valid as a whole, or dropped whole. Returns its item count, 0 if bad. */
static unsigned batch_items(const unsigned char *p, size_t n)
{
    if (n < BATCH_HEAD) return 0;
    unsigned count = get16(p + 8);
    size_t pos = BATCH_HEAD;
    for (unsigned i = 0; i < count; i++) {
        if (n - pos < 2) return 0;
        size_t len = get16(p + pos);
        pos += 2;
        if (n - pos < len) return 0;
        if (len >= HEADER && p[pos + 3] == OP_BATCH) return 0; /* containers do not nest */
        pos += len;
    }
    return pos == n ? count : 0;
}

static int is_batch(const unsigned char *p, size_t n)
{
    return n >= HEADER && p[0] == MAGIC0 && p[1] == MAGIC1 && p[2] == 2 && p[3] == OP_BATCH;
}

static void next_inbox(struct afc *h, const unsigned char **p, size_t *n)
{
    *n = get16(h->inbox);
    *p = h->inbox + 2;
    h->inbox += 2 + *n;
    h->inbox_count--;
}

/* Append one datagram to the defer queue; 0 or -ENOMEM. */
static int dq_push(struct afc *h, const unsigned char *p, size_t n)
{
    if (h->dq_head == h->dq_tail) h->dq_head = h->dq_tail = 0;
    size_t need = 4 + n;
    if (h->dq_tail + need > h->dq_cap && h->dq_head > 0) {
        memmove(h->dq, h->dq + h->dq_head, h->dq_tail - h->dq_head);
        h->dq_tail -= h->dq_head;
        h->dq_head = 0;
    }
    if (h->dq_tail + need > h->dq_cap) {
        size_t cap = h->dq_cap ? h->dq_cap : 65536;
        while (cap < h->dq_tail + need) cap *= 2;
        if (cap > AFC_DEFER_BYTES_MAX + 2 * (LARGE_DGRAM_MAX + 4)) cap = h->dq_tail + need;
        void *q = realloc(h->dq, cap);
        if (!q) return -ENOMEM;
        h->dq = q;
        h->dq_cap = cap;
    }
    put32(h->dq + h->dq_tail, (uint32_t)n);
    memcpy(h->dq + h->dq_tail + 4, p, n);
    h->dq_tail += need;
    return 0;
}

/* Keep an event for afc_recv (a request is waiting for its reply). */
static void defer(struct afc *h, const unsigned char *p, size_t n)
{
    if (h->dq_tail - h->dq_head + 4 + n <= AFC_DEFER_BYTES_MAX && dq_push(h, p, n) == 0) return;
    /* Too far behind: leave the group, as the daemon does with a slow reader, and say so after
     * the events kept so far (an ERROR event datagram of our own, ENOBUFS). */
    static const char text[] = "this socket fell behind while a request waited and left its group; bind again";
    unsigned char ev[HEADER + 4 + sizeof text];
    header(ev, 1, EV_ERROR, 0);
    put16(ev + 8, ENOBUFS);
    put16(ev + 10, (unsigned)(sizeof text - 1));
    memcpy(ev + 12, text, sizeof text - 1);
    if (dq_push(h, ev, sizeof ev - 1) < 0) push_error(h, -ENOBUFS, 0, text);
    h->overrun = 1;
    unsigned char req[HEADER];
    header(req, 1, OP_UNBIND, alloc_id(h));
    (void)transmit(h, req, sizeof req);
}

/* The rest of the container in rbuf goes to the defer queue (rbuf is about to be reused). */
static void inbox_to_defer(struct afc *h)
{
    while (h->inbox_count > 0) {
        const unsigned char *p;
        size_t n;
        next_inbox(h, &p, &n);
        if (handle_item(h, p, n) == ITEM_EVENT) defer(h, p, n);
    }
}

/* Read every datagram waiting (at most `max`), handling replies and keeping events. */
static int read_deferring(struct afc *h, int max)
{
    int got = 0;
    inbox_to_defer(h);
    while (got < max) {
        ssize_t n = recv(h->fd, h->rbuf, LARGE_DGRAM_MAX + 1, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        got++;
        if (n == 1) { h->wake_out = 0; continue; }
        h->tx_blocked = 0; /* the daemon answered: it read from its queue */
        if (is_batch(h->rbuf, (size_t)n)) {
            unsigned count = batch_items(h->rbuf, (size_t)n);
            if (count == 0) { h->bad++; continue; }
            h->inbox = h->rbuf + BATCH_HEAD;
            h->inbox_count = count;
            inbox_to_defer(h);
        } else if (handle_item(h, h->rbuf, (size_t)n) == ITEM_EVENT) {
            defer(h, h->rbuf, (size_t)n);
        }
    }
    return got;
}

static int has_ready(const struct afc *h)
{
    return h->app_writable || h->errq_n > 0 || h->dq_head != h->dq_tail || h->inbox_count > 0 ||
           (h->dead && !h->dead_reported);
}

/* Events wait inside the handle: make sure the socket polls readable (see the top). */
static void wake(struct afc *h)
{
    if (h->wake_out || !has_ready(h)) return;
    static const unsigned char one = 0;
    if (sendto(h->fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&h->self_addr, h->self_len) == 1)
        h->wake_out = 1;
    /* On failure our own queue (or send buffer) is full: then the socket is readable already, or
     * a reply is on its way; afc_timeout() also says 0 while events wait. */
}

static int timers_due(const struct afc *h);

/* Wait for input until `deadline` (at most `cap` ms when cap >= 0), then read what came. */
static void wait_input(struct afc *h, int64_t deadline, int cap)
{
    if (read_deferring(h, 64) == 0 && !h->got_reply) {
        int64_t left = deadline - now_ms();
        int t = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        if (cap >= 0 && cap < t) t = cap;
        int lib = timers_due(h);
        if (lib >= 0 && lib < t) t = lib;
        struct pollfd pfd = { h->fd, POLLIN, 0 };
        (void)poll(&pfd, 1, t);
        (void)read_deferring(h, 64);
    }
    service(h);
}

/* ---- the one event decoder ---- */

struct rd {
    const unsigned char *p;
    size_t n, at;
    int bad;
};

static int rd_need(struct rd *r, size_t k)
{
    if (r->bad || r->n - r->at < k) { r->bad = 1; r->at = r->n; return 0; }
    return 1;
}
static unsigned rd_u8(struct rd *r) { return rd_need(r, 1) ? r->p[r->at++] : 0; }
static unsigned rd_u16(struct rd *r)
{
    if (!rd_need(r, 2)) return 0;
    r->at += 2;
    return get16(r->p + r->at - 2);
}
static uint32_t rd_u32(struct rd *r)
{
    if (!rd_need(r, 4)) return 0;
    r->at += 4;
    return get32(r->p + r->at - 4);
}
static uint64_t rd_u64(struct rd *r)
{
    uint64_t hi = rd_u32(r);
    return hi << 32 | rd_u32(r);
}
static const unsigned char *rd_bytes(struct rd *r, size_t k)
{
    if (!rd_need(r, k)) return NULL;
    r->at += k;
    return r->p + r->at - k;
}
static struct afc_member rd_member(struct rd *r)
{
    struct afc_member m;
    m.node_id = rd_u32(r);
    m.pid = rd_u32(r);
    m.port = rd_u32(r);
    return m;
}
/* A string, copied NUL-terminated into *buf. */
static int rd_string(struct rd *r, char **buf, size_t *cap, size_t *len)
{
    size_t n = rd_u16(r);
    const unsigned char *s = rd_bytes(r, n);
    if (!s) return -1;
    if (grow((void **)buf, cap, n + 1, 1) < 0) return -1;
    memcpy(*buf, s, n);
    (*buf)[n] = '\0';
    *len = n;
    return 0;
}
/* A count of items of `size` bytes each, checked against what is left (no huge allocation). */
static size_t rd_count(struct rd *r, size_t size)
{
    uint32_t n = rd_u32(r);
    if (r->bad || (size_t)n > (r->n - r->at) / size) { r->bad = 1; return 0; }
    return n;
}
static int rd_changes(struct rd *r, struct afc *h, size_t from, size_t *n)
{
    *n = rd_count(r, 13);
    if (grow((void **)&h->chg, &h->chg_cap, from + *n, sizeof *h->chg) < 0) return -1;
    for (size_t i = 0; i < *n; i++) {
        h->chg[from + i].member = rd_member(r);
        h->chg[from + i].reason = (int)rd_u8(r);
    }
    return 0;
}

/* The quorum block (section 10). Flag bits this library does not know are kept as they are. */
static struct afc_quorum_state rd_quorum(struct rd *r)
{
    struct afc_quorum_state q;
    q.flags = rd_u16(r);
    q.quorate = q.flags & AFC_QF_QUORATE ? AFC_QUORATE : AFC_INQUORATE;
    q.votes = rd_u32(r);
    q.expected = rd_u32(r);
    q.quorum = rd_u32(r);
    return q;
}

/* A MESSAGE_PART: its bytes join the message; 1 when the message is complete. */
static int message_part(struct afc *h, struct rd *r, struct afc_event *ev)
{
    size_t gat = r->at;
    size_t gn = rd_u16(r);
    if (!rd_bytes(r, gn)) return -1;
    struct afc_member sender = rd_member(r);
    int order = (int)rd_u8(r);
    uint32_t msg_id = rd_u32(r), total = rd_u32(r), offset = rd_u32(r);
    if (r->bad) return -1;
    const unsigned char *data = r->p + r->at;
    size_t len = r->n - r->at;
    if (offset == 0) {
        h->part.active = 0;
        size_t max = h->msg_max > AFC_MESSAGE_MAX ? AFC_MESSAGE_MAX : h->msg_max;
        if (total == 0 || total > max) return -1;
        if (grow((void **)&h->part.buf, &h->part.cap, total, 1) < 0) return -1;
        struct rd gr = { r->p, r->n, gat, 0 };
        if (rd_string(&gr, &h->part.group, &h->part.group_cap, &h->part.group_len) < 0) return -1;
        h->part.active = 1;
        h->part.msg_id = msg_id;
        h->part.total = total;
        h->part.received = 0;
        h->part.sender = sender;
        h->part.order = order;
    }
    if (!h->part.active || h->part.msg_id != msg_id || h->part.total != total || h->part.received != offset ||
        len > total - offset) {
        h->part.active = 0; /* a gap: the message is lost */
        return -1;
    }
    memcpy(h->part.buf + offset, data, len);
    h->part.received += len;
    if (h->part.received < total) return 0;
    h->part.active = 0;
    ev->type = AFC_EV_MESSAGE;
    ev->group = h->part.group;
    ev->group_len = h->part.group_len;
    ev->message.sender = h->part.sender;
    ev->message.order = h->part.order;
    ev->message.data = h->part.buf;
    ev->message.len = total;
    return 1;
}

/*
 * Every event's fields are read here, and only here. The op says what the datagram holds
 * (MEMBERSHIP_V3 is MEMBERSHIP with the view id and quorum block after the ring id; MEMBERSHIP_V4
 * is MEMBERSHIP_V3 with each member's identity at the end), whatever version the handle speaks.
 * Returns the event type, 0 for nothing to return (a part of a message still arriving), -1 for a
 * malformed datagram.
 */
static int decode_event(struct afc *h, const unsigned char *p, size_t n, struct afc_event *ev)
{
    struct rd r = { p, n, HEADER, 0 };
    int op = p[3];
    memset(ev, 0, sizeof *ev);
    switch (op) {
    case EV_MESSAGE: {
        if (rd_string(&r, &h->gbuf, &h->gbuf_cap, &ev->group_len) < 0) return -1;
        ev->message.sender = rd_member(&r);
        ev->message.order = (int)rd_u8(&r);
        if (r.bad) return -1;
        ev->group = h->gbuf;
        ev->message.data = p + r.at;
        ev->message.len = n - r.at;
        return ev->type = AFC_EV_MESSAGE;
    }
    case EV_MESSAGE_PART:
        return message_part(h, &r, ev) < 0 ? -1 : ev->type;
    case EV_MEMBERSHIP:
    case EV_MEMBERSHIP_V3:
    case EV_MEMBERSHIP_V4: {
        struct afc_membership *m = &ev->membership;
        if (rd_string(&r, &h->gbuf, &h->gbuf_cap, &ev->group_len) < 0) return -1;
        m->kind = (int)rd_u8(&r);
        m->ring_id.rep = rd_u32(&r);
        m->ring_id.seq = rd_u64(&r);
        if (op != EV_MEMBERSHIP) { /* else all zero (memset above) */
            m->view_id.ring.rep = rd_u32(&r);
            m->view_id.ring.seq = rd_u64(&r);
            m->view_id.seq = rd_u32(&r);
            m->quorum = rd_quorum(&r);
        }
        m->n_members = rd_count(&r, 12);
        if (grow((void **)&h->mem, &h->mem_cap, m->n_members + 1, sizeof *h->mem) < 0) return -1;
        for (size_t i = 0; i < m->n_members; i++) h->mem[i] = rd_member(&r);
        if (rd_changes(&r, h, 0, &m->n_joined) < 0) return -1;
        if (rd_changes(&r, h, m->n_joined, &m->n_left) < 0) return -1;
        if (op == EV_MEMBERSHIP_V4) { /* the count again, then each member's uid, gid and flags */
            if (rd_count(&r, 9) != m->n_members) return -1;
            if (grow((void **)&h->ids, &h->ids_cap, m->n_members + 1, sizeof *h->ids) < 0) return -1;
            for (size_t i = 0; i < m->n_members; i++) {
                h->ids[i].uid = rd_u32(&r);
                h->ids[i].gid = rd_u32(&r);
                h->ids[i].flags = rd_u8(&r);
            }
            m->identities = h->ids;
        }
        if (r.bad || r.at != n) return -1;
        ev->group = h->gbuf;
        m->members = h->mem;
        m->joined = h->chg;
        m->left = h->chg + m->n_joined;
        return ev->type = AFC_EV_MEMBERSHIP;
    }
    case EV_QUORUM: {
        if (rd_string(&r, &h->gbuf, &h->gbuf_cap, &ev->group_len) < 0) return -1;
        ev->quorum.ring_id.rep = rd_u32(&r);
        ev->quorum.ring_id.seq = rd_u64(&r);
        ev->quorum.state = rd_quorum(&r);
        if (r.bad || r.at != n) return -1;
        ev->group = h->gbuf;
        return ev->type = AFC_EV_QUORUM;
    }
    case EV_ERROR: {
        unsigned status = rd_u16(&r);
        size_t len;
        if (rd_string(&r, &h->tbuf, &h->tbuf_cap, &len) < 0 || r.at != n) return -1;
        ev->error.error = -(int)status;
        ev->error.message = h->tbuf;
        if (status == STATUS_ECONNREFUSED) die(h, -ECONNREFUSED, NULL);
        return ev->type = AFC_EV_ERROR;
    }
    default:
        return -1;
    }
}

static int decode_counted(struct afc *h, const unsigned char *p, size_t n, struct afc_event *ev)
{
    int t = decode_event(h, p, n, ev);
    if (t < 0) { h->bad++; return 0; }
    return t;
}

/* The library's own events: WRITABLE and errors (send failures; with `last`, the daemon gone,
 * which comes after every event received before). */
static int local_event(struct afc *h, struct afc_event *ev, int last)
{
    if (h->app_writable) {
        h->app_writable = 0;
        memset(ev, 0, sizeof *ev);
        return ev->type = AFC_EV_WRITABLE;
    }
    if (h->errq_n > 0) {
        struct lerror *e = &h->errq[h->errq_head];
        h->errq_head = (h->errq_head + 1) % ERRQ_MAX;
        h->errq_n--;
        memset(ev, 0, sizeof *ev);
        /* copied out of the queue slot, which the next push may reuse */
        if (grow((void **)&h->tbuf, &h->tbuf_cap, sizeof e->text, 1) == 0) {
            memcpy(h->tbuf, e->text, sizeof e->text);
            ev->error.message = h->tbuf;
        } else {
            ev->error.message = "";
        }
        ev->error.error = e->error;
        ev->error.first_send = e->first;
        ev->error.n_sends = e->n;
        return ev->type = AFC_EV_ERROR;
    }
    if (last && h->dead && !h->dead_reported) {
        h->dead_reported = 1;
        memset(ev, 0, sizeof *ev);
        ev->error.error = h->dead;
        ev->error.message = h->dead_text;
        return ev->type = AFC_EV_ERROR;
    }
    return 0;
}

int afc_recv(struct afc *h, struct afc_event *ev)
{
    if (!h || !ev) return -EINVAL;
    h->wait_id = 0;
    service(h);
    int t = 0;
    for (;;) {
        if ((t = local_event(h, ev, 0)) > 0) break;
        if (h->dq_head != h->dq_tail) {
            size_t n = get32(h->dq + h->dq_head);
            const unsigned char *p = h->dq + h->dq_head + 4;
            h->dq_head += 4 + n;
            if ((t = decode_counted(h, p, n, ev)) > 0) break;
            continue;
        }
        if (h->inbox_count > 0) {
            const unsigned char *p;
            size_t n;
            next_inbox(h, &p, &n);
            if (handle_item(h, p, n) == ITEM_EVENT && (t = decode_counted(h, p, n, ev)) > 0) break;
            continue;
        }
        ssize_t n = recv(h->fd, h->rbuf, LARGE_DGRAM_MAX + 1, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            t = (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
            /* Replies and WRITABLE read since the last service may let sends go on now. */
            service(h);
            if (t == -EAGAIN && (t = local_event(h, ev, 1)) == 0) t = -EAGAIN;
            break;
        }
        if (n == 1) { h->wake_out = 0; continue; }
        h->tx_blocked = 0; /* the daemon answered: it read from its queue */
        if (is_batch(h->rbuf, (size_t)n)) {
            unsigned count = batch_items(h->rbuf, (size_t)n);
            if (count == 0) h->bad++;
            h->inbox = h->rbuf + BATCH_HEAD;
            h->inbox_count = count;
        } else if (handle_item(h, h->rbuf, (size_t)n) == ITEM_EVENT &&
                   (t = decode_counted(h, h->rbuf, (size_t)n, ev)) > 0) {
            break;
        }
        service(h);
    }
    if (t == -EAGAIN && h->dead) t = h->dead;
    wake(h);
    return t;
}

/* When the library's next timer is due (ms from now), -1 for none. */
static int timers_due(const struct afc *h)
{
    if (h->dead) return -1;
    int64_t now = now_ms(), due = -1;
#define DUE(t) do { int64_t t_ = (t); if (due < 0 || t_ < due) due = t_; } while (0)
    if (h->paused && h->n_inflight == 0 && !large_outstanding(h))
        DUE(h->writable_seen ? now : h->resume_at ? h->resume_at : now + (h->version >= 2 ? AFC_RETRY_MS : h->retry_ms));
    if (h->tx_blocked) DUE(h->tx_retry_at);
    if (h->n_inflight > 0) {
        for (unsigned i = 0; i < h->n_sent; i++) {
            const struct sendent *e = &h->ring[(h->head + i) % AFC_SEND_WINDOW];
            if (e->state == S_INFLIGHT && !e->large) { DUE(e->sent_at + h->timeout_ms); break; }
        }
    }
    if (large_outstanding(h)) DUE(h->lg.last_tx + h->timeout_ms);
#undef DUE
    if (due < 0) return -1;
    due -= now;
    return due < 0 ? 0 : due > INT_MAX ? INT_MAX : (int)due;
}

int afc_timeout(const struct afc *h)
{
    if (!h) return -1;
    return has_ready(h) ? 0 : timers_due(h);
}

/* ---- requests ---- */

/*
 * One request and its reply (kept in h->reply). Returns 0, the reply's status as a negative
 * errno, or a local error. Held sends go first, so a request never overtakes them.
 */
static int request(struct afc *h, int version, int op, const unsigned char *body, size_t blen, int timeout_ms)
{
    if (h->dead) return h->dead;
    pump(h, 1);
    if (h->dead) return h->dead;
    uint32_t id = alloc_id(h);
    header(h->qbuf, version, op, id);
    if (blen) memcpy(h->qbuf + HEADER, body, blen);
    h->wait_id = id;
    h->got_reply = 0;
    int64_t deadline = now_ms() + timeout_ms;
    int sent = 0, backoff = 1, r = 0;
    for (;;) {
        if (!sent) {
            r = transmit(h, h->qbuf, HEADER + blen);
            if (r == 0) sent = 1;
            else if (r != -EAGAIN) { die(h, r, "cannot reach the daemon"); break; }
        }
        if (h->got_reply) break;
        if (h->dead) { r = h->dead; break; }
        if (now_ms() >= deadline) { r = -ETIMEDOUT; break; }
        wait_input(h, deadline, sent ? -1 : backoff);
        if (!sent && backoff < AFC_RETRY_MS) backoff *= 2;
    }
    h->wait_id = 0;
    wake(h);
    if (!h->got_reply) return r < 0 ? r : -ETIMEDOUT;
    h->got_reply = 0;
    int rop = h->reply[3];
    unsigned status = get16(h->reply + 8);
    if (status != 0) return -(int)status;
    if (rop != (op | REPLY_BIT)) return -EPROTO;
    return 0;
}

/* A request the daemon may refuse with EAGAIN while its control queue is full: retried. */
static int request_retrying(struct afc *h, int op, const unsigned char *body, size_t blen)
{
    int64_t deadline = now_ms() + h->timeout_ms;
    int backoff = 1;
    for (;;) {
        int64_t left = deadline - now_ms();
        int r = request(h, 1, op, body, blen, left > 0 ? (int)left : 0);
        if (r != -EAGAIN || now_ms() >= deadline) return r;
        wait_input(h, deadline, backoff);
        if (backoff < AFC_RETRY_MS) backoff *= 2;
    }
}

static int reply_reader(struct afc *h, struct rd *r)
{
    r->p = h->reply;
    r->n = h->reply_len;
    r->at = HEADER + 2;
    r->bad = 0;
    return 0;
}

static int hello(struct afc *h, int version)
{
    unsigned char body[4];
    put32(body, (uint32_t)getpid());
    int r;
    /* A daemon answers a version it does not speak with the 0xFF EPROTO reply: say hello again
     * in the next lower version (section 8). */
    while ((r = request(h, version, OP_HELLO, body, sizeof body, h->timeout_ms)) == -EPROTO &&
           version > 1 && h->reply[3] == OP_PROTOCOL_ERROR)
        version--;
    if (r < 0) return r;
    struct rd rd;
    reply_reader(h, &rd);
    h->self.node_id = rd_u32(&rd);
    h->self.pid = rd_u32(&rd);
    h->self.port = rd_u32(&rd);
    uint32_t max = rd_u32(&rd);
    size_t dlen = rd_u16(&rd);
    const unsigned char *d = rd_bytes(&rd, dlen);
    if (rd.bad || rd.at != rd.n) return -EPROTO;
    if (dlen >= sizeof h->driver) dlen = sizeof h->driver - 1;
    memcpy(h->driver, d, dlen);
    h->driver[dlen] = '\0';
    h->msg_max = max > AFC_MESSAGE_MAX ? AFC_MESSAGE_MAX : max;
    h->version = version;
    h->dgram_max = version >= 5 ? LARGE_DGRAM_MAX : DGRAM_MAX;
    return 0;
}

static int client_path(char *out, size_t size)
{
    static unsigned counter;
    const char *dir = getenv("XDG_RUNTIME_DIR");
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned rnd = (unsigned)ts.tv_nsec ^ (unsigned)getpid() * 2654435761u ^ ++counter * 40503u;
    int n = snprintf(out, size, "%s/afc-c-%ld-%u-%06x.sock", dir, (long)getpid(), counter, rnd & 0xffffff);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void free_handle(struct afc *h)
{
    for (unsigned i = 0; i < h->count; i++) free(at(h, i)->data);
    free(h->lg.ids);
    free(h->reply);
    free(h->qbuf);
    free(h->rbuf);
    free(h->obuf);
    free(h->dq);
    free(h->gbuf);
    free(h->tbuf);
    free(h->mem);
    free(h->ids);
    free(h->chg);
    free(h->part.group);
    free(h->part.buf);
    free(h->ln_driver);
    free(h->ln_nodes);
    free(h->q_nodes);
    free(h);
}

static int set_addr(struct sockaddr_un *a, socklen_t *len, const char *path)
{
    size_t n = strlen(path);
    if (n == 0) return -EINVAL;
    if (n > (size_t)SUN_PATH_MAX) return -ENAMETOOLONG;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

static struct afc *open_fail(struct afc *h, int err)
{
    if (h) {
        if (h->fd >= 0) close(h->fd);
        if (h->client_path[0]) unlink(h->client_path);
        free_handle(h);
    }
    errno = -err;
    return NULL;
}

struct afc *afc_open_opts(const char *path, const struct afc_options *o)
{
    if (!path) return open_fail(NULL, -EINVAL);
    struct afc *h = calloc(1, sizeof *h);
    if (!h) return open_fail(NULL, -ENOMEM);
    h->fd = -1;
    h->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    h->retry_ms = 1;
    int version = o && o->version >= 1 && o->version < AFC_PROTOCOL_VERSION ? o->version : AFC_PROTOCOL_VERSION;
    int r = set_addr(&h->daemon, &h->daemon_len, path);
    if (r < 0) return open_fail(h, r);
    h->dgram_max = DGRAM_MAX; /* until HELLO's reply says version 5 */
    h->reply = malloc(LARGE_DGRAM_MAX + 1);
    h->qbuf = malloc(DGRAM_MAX + 1);
    h->rbuf = malloc(LARGE_DGRAM_MAX + 1);
    h->obuf = malloc(DGRAM_MAX + 1);
    if (!h->reply || !h->qbuf || !h->rbuf || !h->obuf) return open_fail(h, -ENOMEM);
    h->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (h->fd < 0) return open_fail(h, -errno);
    for (int attempt = 0;; attempt++) {
        if (o && o->client_path) {
            if (strlen(o->client_path) >= sizeof h->client_path) return open_fail(h, -ENAMETOOLONG);
            strcpy(h->client_path, o->client_path);
        } else if ((r = client_path(h->client_path, sizeof h->client_path)) < 0) {
            h->client_path[0] = '\0';
            return open_fail(h, r);
        }
        if ((r = set_addr(&h->self_addr, &h->self_len, h->client_path)) < 0) {
            h->client_path[0] = '\0';
            return open_fail(h, r);
        }
        if (bind(h->fd, (struct sockaddr *)&h->self_addr, h->self_len) == 0) break;
        r = -errno;
        h->client_path[0] = '\0'; /* not ours: never unlink it */
        if (r != -EADDRINUSE || (o && o->client_path) || attempt == 4) return open_fail(h, r);
    }
    if (chmod(h->client_path, o && o->mode ? (mode_t)o->mode : 0600) < 0) return open_fail(h, -errno);
    /* A deeper send buffer, never a shallower one: the kernel gives twice the request capped at
     * net.core.wmem_max, which may be less than the default it had. */
    int before = 0, sndbuf = 0;
    socklen_t optlen = sizeof before;
    (void)getsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &before, &optlen);
    if (before < 2 * SNDBUF_BYTES) {
        sndbuf = SNDBUF_BYTES;
        (void)setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        optlen = sizeof sndbuf;
        if (getsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &optlen) == 0 && sndbuf < before) {
            sndbuf = before / 2;
            (void)setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        }
    }
    /* Version 5 only if a 192 KiB datagram fits the send buffer the kernel gave. */
    optlen = sizeof sndbuf;
    if (version >= 5 && (getsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &optlen) < 0 || sndbuf < LARGE_SNDBUF)) version = 4;
    if ((r = hello(h, version)) < 0) return open_fail(h, r);
    return h;
}

struct afc *afc_open(const char *path) { return afc_open_opts(path, NULL); }

int afc_fd(const struct afc *h) { return h ? h->fd : -EINVAL; }

int afc_bind(struct afc *h, const char *group, int flags)
{
    if (!h || !group) return -EINVAL;
    if (flags & ~AFC_SELF_DELIVERY) return -EINVAL;
    size_t n = strlen(group);
    if (n == 0) return -EINVAL;
    if (n > DGRAM_MAX - HEADER - 3) return -ENAMETOOLONG; /* the request must fit one datagram */
    unsigned char *body = malloc(3 + n);
    if (!body) return -ENOMEM;
    body[0] = (unsigned char)flags;
    put16(body + 1, (unsigned)n);
    memcpy(body + 3, group, n);
    h->overrun = 0;
    int r = request_retrying(h, OP_BIND, body, 3 + n);
    free(body);
    return r;
}

static int drain(struct afc *h, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    pump(h, 1);
    while (h->count > 0 && !h->dead) {
        if (now_ms() >= deadline) return -ETIMEDOUT;
        wait_input(h, deadline, -1);
    }
    return h->dead ? h->dead : 0;
}

int afc_drain(struct afc *h, int timeout_ms)
{
    if (!h) return -EINVAL;
    h->wait_id = 0;
    int r = drain(h, timeout_ms < 0 ? h->timeout_ms : timeout_ms);
    wake(h);
    return r;
}

int afc_unbind(struct afc *h)
{
    if (!h) return -EINVAL;
    int r = drain(h, h->timeout_ms);
    if (r == 0) r = request_retrying(h, OP_UNBIND, NULL, 0);
    wake(h);
    return r;
}

int afc_send(struct afc *h, const void *buf, size_t len, int order)
{
    if (!h) return -EINVAL;
    if (h->dead) return h->dead;
    int more = order & AFC_MORE;
    order &= ~AFC_MORE;
    if (order < AFC_FIFO || order > AFC_SAFE || (len > 0 && !buf)) return -EINVAL;
    if (len > h->msg_max) return -EMSGSIZE;
    int large = len > SEND_DATA_MAX(h);
    if (h->count == AFC_SEND_WINDOW || (large && h->large_held) || (!large && h->bytes + len > AFC_SEND_BYTES_MAX)) {
        h->want_writable |= large ? 2 : 1;
        pump(h, 1);
        wake(h);
        return h->dead ? h->dead : -EAGAIN;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) return -ENOMEM;
    if (len) memcpy(copy, buf, len);
    struct sendent *e = at(h, h->count++);
    memset(e, 0, sizeof *e);
    e->data = copy;
    e->len = len;
    e->order = (uint8_t)order;
    e->large = (uint8_t)large;
    e->state = S_UNSENT;
    e->seq = ++h->sent;
    if (large) h->large_held = 1;
    else {
        h->bytes += len;
        h->unsent_bytes += 2 + SEND_HEAD + len;
    }
    if (!more || large) pump(h, 1);
    else if (h->unsent_bytes + BATCH_HEAD > DGRAM_MAX) pump(h, 0); /* full containers only */
    wake(h);
    return 0;
}

int afc_flush(struct afc *h)
{
    if (!h) return -EINVAL;
    pump(h, 1);
    wake(h);
    return h->dead;
}

int afc_members(struct afc *h, struct afc_member *out, size_t max)
{
    if (!h || (max > 0 && !out)) return -EINVAL;
    int r = request(h, 1, OP_MEMBERS, NULL, 0, h->timeout_ms);
    if (r < 0) return r;
    struct rd rd;
    reply_reader(h, &rd);
    size_t glen = rd_u16(&rd);
    (void)rd_bytes(&rd, glen);
    size_t n = rd_count(&rd, 12);
    for (size_t i = 0; i < n; i++) {
        struct afc_member m = rd_member(&rd);
        if (i < max) out[i] = m;
    }
    if (rd.bad || rd.at != rd.n) return -EPROTO;
    return n > INT_MAX ? INT_MAX : (int)n;
}

int afc_local_node(struct afc *h, struct afc_node *out)
{
    if (!h || !out) return -EINVAL;
    int r = request(h, 1, OP_LOCAL_NODE, NULL, 0, h->timeout_ms);
    if (r < 0) return r;
    struct rd rd;
    size_t dlen;
    reply_reader(h, &rd);
    memset(out, 0, sizeof *out);
    out->node_id = rd_u32(&rd);
    out->ring_id.rep = rd_u32(&rd);
    out->ring_id.seq = rd_u64(&rd);
    if (rd_string(&rd, &h->ln_driver, &h->ln_driver_cap, &dlen) < 0) return -EPROTO;
    size_t n = rd_count(&rd, 4);
    if (grow((void **)&h->ln_nodes, &h->ln_nodes_cap, n + 1, sizeof *h->ln_nodes) < 0) return -ENOMEM;
    for (size_t i = 0; i < n; i++) h->ln_nodes[i] = rd_u32(&rd);
    if (rd.bad || rd.at != rd.n) return -EPROTO;
    out->driver = h->ln_driver;
    out->nodes = h->ln_nodes;
    out->n_nodes = n;
    return 0;
}

int afc_quorum(struct afc *h, struct afc_quorum_info *out)
{
    if (!h || !out) return -EINVAL;
    memset(out, 0, sizeof *out);
    /* A daemon below version 3 does not know the op (its 0xFF EPROTO would read as "restarted"). */
    if (h->version < 3) return h->dead ? h->dead : -EOPNOTSUPP;
    int r = request(h, 1, OP_QUORUM, NULL, 0, h->timeout_ms);
    if (r < 0) return r;
    struct rd rd;
    reply_reader(h, &rd);
    struct afc_quorum_state state = rd_quorum(&rd);
    size_t n = rd_count(&rd, 9);
    if (grow((void **)&h->q_nodes, &h->q_nodes_cap, n + 1, sizeof *h->q_nodes) < 0) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        h->q_nodes[i].node_id = rd_u32(&rd);
        h->q_nodes[i].votes = rd_u32(&rd);
        h->q_nodes[i].present = rd_u8(&rd) != 0;
    }
    if (rd.bad || rd.at != rd.n) return -EPROTO;
    out->state = state;
    out->nodes = h->q_nodes;
    out->n_nodes = n;
    return 0;
}

int afc_close(struct afc *h)
{
    if (!h) return -EINVAL;
    int r = 0;
    if (!h->dead) {
        r = drain(h, h->timeout_ms);
        if (!h->dead) {
            int c = request(h, 1, OP_CLOSE, NULL, 0, h->timeout_ms < CLOSE_TIMEOUT_MS ? h->timeout_ms : CLOSE_TIMEOUT_MS);
            if (r == 0 && c != -ETIMEDOUT) r = c; /* a daemon gone meanwhile forgets us anyway */
        }
    }
    close(h->fd);
    unlink(h->client_path);
    free_handle(h);
    return r;
}

const struct afc_member *afc_self(const struct afc *h) { return h ? &h->self : NULL; }
const char *afc_driver(const struct afc *h) { return h ? h->driver : ""; }
size_t afc_message_size_max(const struct afc *h) { return h ? h->msg_max : 0; }
int afc_version(const struct afc *h) { return h ? h->version : -EINVAL; }
uint64_t afc_sent(const struct afc *h) { return h ? h->sent : 0; }
size_t afc_pending(const struct afc *h) { return h ? h->count : 0; }

/* ---- names ---- */

static const struct { int err; const char *name, *text; } errors[] = {
    { ENOENT, "ENOENT", "no such thing" },
    { ESRCH, "ESRCH", "the daemon cannot see this process" },
    { EAGAIN, "EAGAIN", "queue full (backpressure): wait for AFC_EV_WRITABLE, then send again" },
    { ENOMEM, "ENOMEM", "out of memory" },
    { EACCES, "EACCES", "not allowed (may you write to the daemon's socket?)" },
    { EINVAL, "EINVAL", "invalid argument or malformed request" },
    { EMFILE, "EMFILE", "too many sockets, groups or members (a configured limit)" },
    { ENAMETOOLONG, "ENAMETOOLONG", "group name or socket path too long" },
    { EPROTO, "EPROTO", "protocol error: the daemon did not understand, or does not know this socket (restarted?)" },
    { EMSGSIZE, "EMSGSIZE", "message too large for this daemon" },
    { EOPNOTSUPP, "EOPNOTSUPP", "not supported: an order the cluster's driver cannot give, or a request older protocol versions lack" },
    { EADDRINUSE, "EADDRINUSE", "already bound: unbind first" },
    { ENOBUFS, "ENOBUFS", "fell behind and was removed from the group: read faster, then bind again" },
    { ENOTCONN, "ENOTCONN", "not bound to a group" },
    { ETIMEDOUT, "ETIMEDOUT", "no reply from the daemon in time" },
    { ECONNREFUSED, "ECONNREFUSED", "no daemon at that socket, or it stopped" },
    { ECANCELED, "ECANCELED", "cancelled" },
};

const char *afc_strerror(int err)
{
    if (err < 0) err = -err;
    if (err == 0) return "success";
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].err == err) return errors[i].text;
    return strerror(err);
}

const char *afc_errname(int err)
{
    if (err < 0) err = -err;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].err == err) return errors[i].name;
    return "E?";
}

const char *afc_order_name(int order)
{
    static const char *names[] = { "fifo", "agreed", "safe" };
    order &= ~AFC_MORE;
    return order >= 0 && order <= 2 ? names[order] : "?";
}

const char *afc_kind_name(int kind) { return kind == AFC_REGULAR ? "regular" : kind == AFC_TRANSITIONAL ? "transitional" : "?"; }

const char *afc_reason_name(int reason)
{
    static const char *names[] = { "join", "leave", "nodedown", "procdown", "overrun" };
    return reason >= 0 && reason <= 4 ? names[reason] : "?";
}

const char *afc_quorum_flag_name(uint32_t flag)
{
    switch (flag) {
    case AFC_QF_DISABLED: return "disabled";
    case AFC_QF_TWO_NODE: return "two_node";
    case AFC_QF_WAIT_FOR_ALL: return "wait_for_all";
    case AFC_QF_WAIT_FOR_ALL_PENDING: return "wait_for_all_pending";
    case AFC_QF_LAST_MAN_STANDING: return "last_man_standing";
    case AFC_QF_AUTO_TIE_BREAKER: return "auto_tie_breaker";
    default: return NULL;
    }
}
