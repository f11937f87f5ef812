/*
 * afcluster.h: a cluster socket for C programs, over the afcluster bridge protocol
 * (docs/PROTOCOL.md, versions 5 down to 1). C99, libc only, Linux.
 *
 * A handle is a unix datagram socket bound to its own path and talking to the node's
 * daemon. afc_fd() is that socket: poll or epoll it for POLLIN, then call afc_recv() until it
 * returns -EAGAIN. Nothing runs behind your back: no threads, no callbacks, no signals.
 * Every function returns 0 (or a positive count or event type) on success and a negative
 * errno value on failure; afc_strerror() names it. A handle is used by one thread at a time.
 *
 * The reference is clients/c/README.md.
 */
#ifndef AFCLUSTER_H
#define AFCLUSTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The highest bridge protocol version this library speaks. */
#define AFC_PROTOCOL_VERSION 5

/* afc_send() orders (the wire values), and a flag that may be or-ed into them. */
#define AFC_FIFO   0
#define AFC_AGREED 1
#define AFC_SAFE   2
/* More sends follow: the library may hold this message to pack it with the next ones into one
 * datagram. Held messages go at the next afc_send() without AFC_MORE, afc_flush(), afc_recv(),
 * any request, or as soon as a datagram's worth is held (like MSG_MORE). */
#define AFC_MORE   0x100

/* afc_bind() flags. */
#define AFC_SELF_DELIVERY 0x01 /* receive your own messages */

/* Limits of one handle (bounded memory; see README.md, "Limits"). */
#define AFC_SEND_WINDOW     512             /* messages held by afc_send (not yet accepted) */
#define AFC_SEND_BYTES_MAX  (2u << 20)      /* bytes of small messages held by afc_send */
#define AFC_DEFER_BYTES_MAX (16u << 20)     /* events kept while a request waits for its reply */
#define AFC_MESSAGE_MAX     (64u << 20)     /* largest message sent or reassembled */
#define AFC_RETRY_MS        50              /* resend after EAGAIN when no WRITABLE came */

/* Event types: afc_recv() returns one of these (> 0), or a negative errno. */
enum afc_event_type {
    AFC_EV_MESSAGE = 1,    /* a message of the group (large ones reassembled) */
    AFC_EV_MEMBERSHIP = 2, /* the group's members changed */
    AFC_EV_ERROR = 3,      /* from the daemon (ENOBUFS, ECONNREFUSED) or a failed afc_send */
    AFC_EV_WRITABLE = 4,   /* afc_send() returned -EAGAIN before; it may take messages again */
    AFC_EV_QUORUM = 5      /* the node's quorum state changed, the group's membership did not (version 3) */
};

enum afc_reason { AFC_JOIN = 0, AFC_LEAVE = 1, AFC_NODEDOWN = 2, AFC_PROCDOWN = 3, AFC_OVERRUN = 4 };
enum afc_kind { AFC_REGULAR = 0, AFC_TRANSITIONAL = 1 };
/* Whether the node is in the primary component: only protocol version 3 tells it. */
enum afc_quorum { AFC_QUORUM_UNKNOWN = 0, AFC_QUORATE = 1, AFC_INQUORATE = 2 };

/* The quorum block's flag bits (PROTOCOL.md section 10), as on the wire. */
#define AFC_QF_QUORATE              0x0001u /* this node is in the primary component */
#define AFC_QF_DISABLED             0x0002u /* quorum is switched off: every part counts as quorate */
#define AFC_QF_TWO_NODE             0x0004u
#define AFC_QF_WAIT_FOR_ALL         0x0008u /* wait_for_all, and every node has been seen */
#define AFC_QF_WAIT_FOR_ALL_PENDING 0x0010u /* wait_for_all still waiting to see every node once */
#define AFC_QF_LAST_MAN_STANDING    0x0020u
#define AFC_QF_AUTO_TIE_BREAKER     0x0040u

struct afc_member {
    uint32_t node_id;
    uint32_t pid;
    uint32_t port;
};

struct afc_ring_id {
    uint32_t rep; /* a node id */
    uint64_t seq; /* prints as rep.seq */
};

/* A group view's id (version 3), the same at every member: the ring the view belongs to and its
 * number on that ring (from 1). A transitional view continues the old ring's count, so it is
 * named by the event's ring_id (the new ring) together with this; for a regular view ring_id
 * equals ring. Comparing all three (ring_id, ring, seq) tells any two views apart. */
struct afc_view_id {
    struct afc_ring_id ring; /* view_ring: a transitional view's is the old ring */
    uint32_t seq;            /* view_seq */
};

/* The node's quorum state (version 3): the quorum block. */
struct afc_quorum_state {
    int quorate;       /* enum afc_quorum: AFC_QUORATE or AFC_INQUORATE (AFC_QF_QUORATE of flags) */
    uint32_t flags;    /* AFC_QF_* bits */
    uint32_t votes;    /* votes of the nodes in this node's current configuration */
    uint32_t expected; /* expected votes */
    uint32_t quorum;   /* votes needed: expected / 2 + 1, or 1 in a two-node cluster */
};

/* Who a member is (version 4): the owner and group of its socket file, as its own node's daemon
 * saw them at HELLO. AFC_ID_UNKNOWN in both when its node did not say (a daemon older than
 * identities). */
#define AFC_ID_UNKNOWN  0xFFFFFFFFu
#define AFC_ID_VERIFIED 0x01 /* flags: the daemon also verified the member's pid */
struct afc_identity {
    uint32_t uid;
    uint32_t gid;
    uint32_t flags; /* AFC_ID_* bits; ignore bits you do not know */
};

/* One member that joined or left, and why (enum afc_reason). */
struct afc_change {
    struct afc_member member;
    int reason;
};

struct afc_message {
    struct afc_member sender;
    int order;        /* AFC_FIFO, AFC_AGREED, AFC_SAFE */
    const void *data; /* len bytes */
    size_t len;
};

struct afc_membership {
    int kind; /* enum afc_kind */
    struct afc_ring_id ring_id;
    const struct afc_member *members; /* after the change, sorted */
    size_t n_members;
    const struct afc_change *joined;
    size_t n_joined;
    const struct afc_change *left;
    size_t n_left;
    /* Version 3 (MEMBERSHIP_V3): the view this event opens, and the node's quorum state as of
     * this event. All zero under versions 1 and 2: quorum.quorate is AFC_QUORUM_UNKNOWN exactly
     * when the event carries neither. */
    struct afc_view_id view_id;
    struct afc_quorum_state quorum;
    /* Version 4 (MEMBERSHIP_V4): each member's identity, in the order of members (n_members
     * entries). NULL when the event carries none (always below version 4): test the pointer. */
    const struct afc_identity *identities;
};

/* AFC_EV_QUORUM (version 3): it takes its place in the group's stream like any event. */
struct afc_quorum_event {
    struct afc_ring_id ring_id;
    struct afc_quorum_state state;
};

struct afc_error {
    int error;           /* a negative errno: -ENOBUFS, -ECONNREFUSED, or why a send failed */
    const char *message; /* NUL-terminated */
    /* A failed afc_send: sends number first_send .. first_send + n_sends - 1 (afc_sent()
     * numbers them) were not accepted and are dropped. 0 and 0 for the daemon's errors. */
    uint64_t first_send;
    uint64_t n_sends;
};

/* What afc_recv() fills. Pointers point into the handle and stay valid until the next call on
 * the handle (any function). Fields of other types are zero. */
struct afc_event {
    int type;             /* enum afc_event_type */
    const char *group;    /* message, membership and quorum: the group, NUL-terminated */
    size_t group_len;
    struct afc_message message;
    struct afc_membership membership;
    struct afc_error error;
    struct afc_quorum_event quorum; /* AFC_EV_QUORUM (version 3) */
};

/* afc_local_node(): the node and its current configuration. */
struct afc_node {
    uint32_t node_id;
    struct afc_ring_id ring_id;
    const char *driver;     /* valid until the next call on the handle */
    const uint32_t *nodes;  /* node ids in the configuration, ascending */
    size_t n_nodes;
};

/* afc_quorum(): the node's quorum state and every configured node. */
struct afc_quorum_node {
    uint32_t node_id;
    uint32_t votes;
    int present; /* 1: in this node's current configuration */
};

struct afc_quorum_info {
    struct afc_quorum_state state;
    const struct afc_quorum_node *nodes; /* ascending node id; valid until the next call on the handle */
    size_t n_nodes;
};

struct afc_options {
    const char *client_path; /* where the handle binds (default: a new name in $XDG_RUNTIME_DIR or /tmp) */
    int timeout_ms;          /* a request's reply, a send's acceptance (default 10000) */
    int version;             /* highest protocol version to speak: 1 to 5 (default 5) */
    unsigned mode;           /* the client socket file's mode (default 0600) */
};

struct afc;

/* Open a cluster socket on the daemon at `path`. NULL on failure, with errno set (a positive
 * errno, like open(2)). */
struct afc *afc_open(const char *path);
struct afc *afc_open_opts(const char *path, const struct afc_options *opts);

/* The socket to poll for POLLIN. */
int afc_fd(const struct afc *h);

/* Join `group` (NUL-terminated); flags: AFC_SELF_DELIVERY. Waits for the daemon's reply. */
int afc_bind(struct afc *h, const char *group, int flags);
/* Leave the group, after every message sent before is accepted. */
int afc_unbind(struct afc *h);

/* Send `len` bytes to the group in `order` (| AFC_MORE). 0: the library holds the message and
 * will hand it to the daemon in call order; -EAGAIN: not taken, wait for AFC_EV_WRITABLE. */
int afc_send(struct afc *h, const void *buf, size_t len, int order);
/* Hand every held message to the daemon now (those AFC_MORE kept). */
int afc_flush(struct afc *h);
/* Wait (at most timeout_ms; < 0: the handle's timeout) until the daemon accepted every message
 * sent so far. Events arriving meanwhile are kept for afc_recv(). */
int afc_drain(struct afc *h, int timeout_ms);

/* The next event: its type (> 0), or -EAGAIN when none is waiting, or a negative errno. */
int afc_recv(struct afc *h, struct afc_event *ev);
/* How long (ms) poll may wait before the library needs afc_recv() called even without input
 * (a resend after EAGAIN, a timeout); -1 when it does not. */
int afc_timeout(const struct afc *h);

/* The group's members: fills at most `max`, returns how many there are. */
int afc_members(struct afc *h, struct afc_member *out, size_t max);
/* This node, its ring and configuration (also a cheap "is the daemon still there"). */
int afc_local_node(struct afc *h, struct afc_node *out);
/* The node's quorum state and every configured node (-EOPNOTSUPP below protocol version 3). */
int afc_quorum(struct afc *h, struct afc_quorum_info *out);

/* Close: hand over held messages (up to the timeout), leave the group, remove the socket
 * file, free the handle. Returns 0, or the first error (the handle is freed anyway). */
int afc_close(struct afc *h);

/* Who this handle is, what the daemon runs and carries. */
const struct afc_member *afc_self(const struct afc *h);
const char *afc_driver(const struct afc *h);
size_t afc_message_size_max(const struct afc *h);
int afc_version(const struct afc *h);           /* the protocol version in use: 1 to 5 */
uint64_t afc_sent(const struct afc *h);         /* afc_send() calls that returned 0 */
size_t afc_pending(const struct afc *h);        /* of those, not yet accepted by the daemon */

/* A message for a negative errno from this library (or a positive one). */
const char *afc_strerror(int err);
/* Its name: "EAGAIN", "ENOBUFS", ... ("E?" for one this library does not name). */
const char *afc_errname(int err);

/* Names of enum values, for printing ("agreed", "regular", "nodedown"). */
const char *afc_order_name(int order);
const char *afc_kind_name(int kind);
const char *afc_reason_name(int reason);
/* A quorum flag's name as `afcluster listen` prints it ("two_node", ...), for one AFC_QF_* bit
 * other than AFC_QF_QUORATE; NULL for any other value. */
const char *afc_quorum_flag_name(uint32_t flag);

#ifdef __cplusplus
}
#endif

#endif
