// The native helper of the daemon and the client (Node-API, so one build serves every Node
// version from 20 on):
//  - trim(): glibc's malloc_trim, so a daemon can hand back to the kernel the memory its
//    allocator kept after a load (core/af/memory.ts); mallocTune(): glibc's thresholds for a
//    process that trims itself, so a load does not hand memory back and fault it in per buffer;
//  - unix datagram sockets (core/af/unix.ts): each datagram is received straight into a buffer of
//    its own size (its size from a peek), so datagrams of any size the sender's socket allows
//    arrive whole and are copied once, by the kernel; a send gathers several buffers (a header
//    and a payload need not be joined first) and reports failure as -errno, without an Error;
//  - UDP sockets (core/transport/udp.ts), on the same poll: each datagram in a buffer of its own
//    size (Node's dgram receives into a 64 KiB buffer, then zero-fills one of the datagram's size
//    and copies into it), its source as a number (IPv4) or a string (IPv6) that sourceKey() also
//    gives for a configured address, so the transport maps it to a node without building strings
//    or an object per datagram; sends are synchronous, to an address prepared once (sockaddr()).
#define _GNU_SOURCE
#define NAPI_VERSION 8 // async cleanup hooks: a Worker's sockets close before its env goes
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// trim(): releases the allocator's free memory to the kernel; true when some was released,
// false when none was (or the C library has no malloc_trim).
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#if defined(__GLIBC__)
  released = malloc_trim(0) != 0;
#endif
  napi_value out;
  napi_get_boolean(env, released, &out);
  return out;
}

// mallocTune(trimThreshold, topPad, mmapThreshold): glibc's mallopt for a process that trims
// itself (the daemon's memory governor calls trim() once a load has settled). Under a load of
// large messages every buffer of 64 KiB or more that is freed at the top of the heap made glibc
// return that memory to the kernel, and the next buffer fault it in again, page by page; buffers
// over 128 KiB (version 5's datagrams) were mmap'ed and unmapped one by one. True when every
// option was taken (false on another C library).
static napi_value malloc_tune(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t v[3] = { 0, 0, 0 };
  bool ok = napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 3;
  for (size_t i = 0; ok && i < 3; i++) ok = napi_get_value_int32(env, argv[i], &v[i]) == napi_ok && v[i] >= 0;
#if defined(__GLIBC__)
  ok = ok && mallopt(M_TRIM_THRESHOLD, v[0]) == 1 && mallopt(M_TOP_PAD, v[1]) == 1 && mallopt(M_MMAP_THRESHOLD, v[2]) == 1;
#else
  ok = false;
#endif
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

// ---- unix datagram sockets ----

// Datagrams received per wake-up at most, so one busy socket cannot starve the event loop.
#define RECV_PER_WAKE 64
#define GATHER_MAX 16
// The most of one datagram handed to JavaScript: above every protocol limit (192 KiB), so a
// longer one (a sender may raise its send buffer to megabytes) arrives cut to this, is still over
// the limit, and is refused; its memory stays bounded whatever the sender's buffer.
#define READ_MAX (256 * 1024)
// A datagram of up to this size is read in one call into the socket's scratch buffer (READ_MAX
// bytes, allocated at its first read) and copied out into a buffer of its own size; a larger one
// is peeked for its size first and read straight into its buffer (two calls, no copy of a large
// payload). A socket reads the first way until a large datagram comes, then peeks until
// SMALL_RUN small ones in a row: a socket that carries large datagrams among small ones (frames
// and tokens) copies at most one large one per run of small ones, not every other datagram.
#define COPY_MAX (16 * 1024)
#define SMALL_RUN 8

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int family;     // AF_UNIX, AF_INET or AF_INET6
  int events;     // what the poll watches now
  bool connected;
  bool closed;
  // The struct lives until both are done: the poll handle (closed by close(), then libuv's close
  // callback) and the JavaScript handle (its finalizer). Calls on a closed handle answer -EBADF.
  bool poll_done;
  bool js_done;
  napi_ref on_message; // (buf: Buffer, source: path | null (unix), number (IPv4), string (IPv6)) => void
  napi_ref on_writable;
  napi_async_context actx;
  // Holds the env (a Worker's, say) open until the poll handle is closed; removed then.
  napi_async_cleanup_hook_handle cleanup;
  char *scratch;  // READ_MAX bytes for datagrams read in one call (COPY_MAX), or NULL
  bool peek;      // a datagram over COPY_MAX came, and not SMALL_RUN small ones since: peek
  int smalls;     // small datagrams in a row while peeking
} usock;

// libuv is done with the poll handle: only memory is left, and the env may be going.
static void usock_poll_closed(uv_handle_t *h) {
  usock *s = (usock *)h->data;
  s->poll_done = true;
  if (s->cleanup) napi_remove_async_cleanup_hook(s->cleanup);
  s->cleanup = NULL;
  if (s->js_done) free(s);
}

// Everything that needs the env happens here, while it is alive; the handle's memory goes in
// usock_poll_closed.
static void usock_close_now(usock *s) {
  if (s->closed) return;
  s->closed = true;
  napi_delete_reference(s->env, s->on_message);
  napi_delete_reference(s->env, s->on_writable);
  napi_async_destroy(s->env, s->actx);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, usock_poll_closed);
  close(s->fd);
  s->fd = -1;
  free(s->scratch); // only on_poll reads it, and the poll is stopped
  s->scratch = NULL;
}

// The env is ending (a Worker that stops with the socket open, or the process exiting): close.
static void usock_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  usock_close_now((usock *)arg);
}

// The JavaScript handle was collected. While the socket is open its callbacks hold the object
// that holds the handle, so this comes after close() in practice; if not, the socket closes here.
static void usock_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  usock *s = (usock *)data;
  s->js_done = true;
  if (!s->closed) usock_close_now(s);
  else if (s->poll_done) free(s);
}

// Calls fn(argv) as a callback from the event loop: microtasks and nextTicks run after it, and
// an exception it throws is the process's uncaught exception, as for any of Node's own sockets.
static void usock_call(usock *s, napi_ref ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value fn, recv;
  if (napi_get_reference_value(env, ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv); // make_callback wants an object for `this`
  if (napi_make_callback(env, s->actx, recv, fn, argc, argv, NULL) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events);

// A datagram's source address, as sockaddr_storage holds it, or a unix socket's path (one byte more
// than sockaddr_un, zeroed: a path of the full 108 bytes has no NUL of its own).
typedef union {
  struct sockaddr_storage ss;
  struct sockaddr_un un;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
  char bytes[sizeof(struct sockaddr_un) + 1];
} source_addr;

// An IP source as JavaScript sees it: IPv4 a number, address * 65536 + port (below 2^48, exact);
// IPv6 a string, "address port" (inet_ntop's form, with the scope id after a % when there is one).
// NULL for another family.
static napi_value ip_source_key(napi_env env, const source_addr *a) {
  napi_value out = NULL;
  if (a->ss.ss_family == AF_INET) {
    double key = (double)ntohl(a->in.sin_addr.s_addr) * 65536.0 + ntohs(a->in.sin_port);
    napi_create_double(env, key, &out);
  } else if (a->ss.ss_family == AF_INET6) {
    char text[INET6_ADDRSTRLEN + 32];
    if (!inet_ntop(AF_INET6, &a->in6.sin6_addr, text, INET6_ADDRSTRLEN)) return NULL;
    size_t n = strlen(text);
    if (a->in6.sin6_scope_id) n += (size_t)snprintf(text + n, sizeof text - n, "%%%u", (unsigned)a->in6.sin6_scope_id);
    snprintf(text + n, sizeof text - n, " %u", (unsigned)ntohs(a->in6.sin6_port));
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  }
  return out;
}

static void usock_set_events(usock *s, int events) {
  if (s->closed || s->events == events) return;
  s->events = events;
  uv_poll_start(&s->poll, events, on_poll);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  usock *s = (usock *)h->data;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  // An error on the descriptor: libuv has stopped the poll. The first peek takes the error (the
  // datagrams waiting are read at the next wake), a writer waiting for room is called (its send
  // will say what failed), and the poll starts again, with whatever that writer asked to watch.
  bool failed = status < 0;
  if (failed) { events = UV_READABLE | (s->events & UV_WRITABLE); s->events = 0; }
  if ((events & UV_WRITABLE) && !s->closed) {
    usock_set_events(s, UV_READABLE);
    usock_call(s, s->on_writable, 0, NULL);
  }
  for (int i = 0; i < RECV_PER_WAKE && (events & UV_READABLE) && !s->closed; i++) {
    if (!s->peek && !s->scratch) {
      s->scratch = malloc(READ_MAX);
      if (!s->scratch) s->peek = true; // no memory for it: the peek path needs none
    }
    napi_handle_scope each; // one datagram's handles at a time
    if (napi_open_handle_scope(env, &each) != napi_ok) break;
    source_addr name;
    memset(&name, 0, sizeof name);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &name;
    msg.msg_namelen = s->family == AF_UNIX ? sizeof name.un : sizeof name.ss;
    msg.msg_iovlen = 1;
    napi_value buf;
    ssize_t r;
    if (!s->peek) {
      // One call: read into the scratch buffer (EAGAIN when the queue is empty), then copy out.
      // Cut only when over READ_MAX: passed on cut, as below, over every limit and refused.
      struct iovec iov = { s->scratch, READ_MAX };
      msg.msg_iov = &iov;
      do r = recvmsg(s->fd, &msg, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
      if (r < 0) { napi_close_handle_scope(env, each); break; }
      if ((size_t)r > COPY_MAX) { s->peek = true; s->smalls = 0; }
      if (napi_create_buffer_copy(env, (size_t)r, s->scratch, NULL, &buf) != napi_ok) { napi_close_handle_scope(env, each); continue; }
    } else {
      // The next datagram's size, without taking it (MSG_TRUNC: its whole size, whatever the
      // buffer): EAGAIN when the queue is empty. (SIOCINQ would say 0 for an empty queue, and a
      // datagram arriving before the recvmsg would then be cut to the buffer it was given.)
      ssize_t next;
      do next = recv(s->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT); while (next < 0 && errno == EINTR);
      if (next < 0) { napi_close_handle_scope(env, each); break; }
      if ((size_t)next > COPY_MAX) s->smalls = 0;
      else if (++s->smalls >= SMALL_RUN) s->peek = false;
      size_t cap = next <= 0 ? 1 : (size_t)next > READ_MAX ? READ_MAX : (size_t)next;
      void *data = NULL;
      if (napi_create_buffer(env, cap, &data, &buf) != napi_ok) { napi_close_handle_scope(env, each); break; }
      struct iovec iov = { data, cap };
      msg.msg_iov = &iov;
      do r = recvmsg(s->fd, &msg, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
      if (r < 0) { napi_close_handle_scope(env, each); break; }
      // Cut only when over READ_MAX (then over every limit, and refused as such); otherwise it
      // cannot be (one reader, the size peeked), and a cut datagram is never passed on.
      bool cut = (msg.msg_flags & MSG_TRUNC) != 0;
      if ((cut && cap < READ_MAX) || ((size_t)r != cap && !cut && napi_create_buffer_copy(env, (size_t)r, data, NULL, &buf) != napi_ok)) {
        napi_close_handle_scope(env, each);
        continue;
      }
    }
    napi_value argv[2];
    if (s->family == AF_UNIX) {
      size_t namelen = msg.msg_namelen < sizeof name.bytes ? msg.msg_namelen : sizeof name.bytes;
      size_t pathlen = namelen > offsetof(struct sockaddr_un, sun_path)
        ? strnlen(name.un.sun_path, namelen - offsetof(struct sockaddr_un, sun_path)) : 0;
      if (pathlen > 0 && name.un.sun_path[0] != '\0') napi_create_string_utf8(env, name.un.sun_path, pathlen, &argv[1]);
      else napi_get_null(env, &argv[1]);
    } else {
      argv[1] = ip_source_key(env, &name);
      if (argv[1] == NULL) napi_get_null(env, &argv[1]);
    }
    argv[0] = buf;
    usock_call(s, s->on_message, 2, argv);
    napi_close_handle_scope(env, each);
  }
  if (failed) usock_set_events(s, s->events | UV_READABLE); // 0 unless the writer re-armed it
  napi_close_handle_scope(env, scope);
}

// The open socket a call names in its first argument (and the call's arguments into argv, at
// most `want`, the rest undefined); NULL when there are fewer than `need` or the socket is closed.
static usock *open_socket_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t want, size_t need) {
  size_t argc = want;
  usock *s = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < need
      || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok) return NULL;
  return s && !s->closed ? s : NULL;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

// sockaddr_un for `path`: 0, or -ENAMETOOLONG / -EINVAL.
static int path_arg(napi_env env, napi_value v, struct sockaddr_un *a, socklen_t *len) {
  size_t n = 0;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return -EINVAL;
  if (n == 0) return -EINVAL;
  if (n >= sizeof a->sun_path) return -ENAMETOOLONG;
  napi_get_value_string_utf8(env, v, a->sun_path, sizeof a->sun_path, &n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

// The socket's send buffer, as the kernel counts it (a datagram may be up to 32 bytes less).
static int send_buffer(int fd) {
  int v = 0;
  socklen_t l = sizeof v;
  return getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l) == 0 ? v : 0;
}

// The handle for a new descriptor `fd` (closed here on failure), polled for reading: an external,
// or -errno.
static napi_value socket_handle(napi_env env, int fd, int family, napi_value on_message, napi_value on_writable, const char *what) {
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) { close(fd); return int_value(env, -EINVAL); }
  usock *s = calloc(1, sizeof *s);
  if (!s) { close(fd); return int_value(env, -ENOMEM); }
  s->env = env;
  s->fd = fd;
  s->family = family;
  napi_value name;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, NULL, name, &s->actx) != napi_ok) {
    close(fd);
    free(s);
    return int_value(env, -ENOMEM);
  }
  if (uv_poll_init(loop, &s->poll, fd) != 0) { // nothing for libuv to close
    napi_async_destroy(env, s->actx);
    close(fd);
    free(s);
    return int_value(env, -ENOMEM);
  }
  s->poll.data = s;
  napi_create_reference(env, on_message, 1, &s->on_message);
  napi_create_reference(env, on_writable, 1, &s->on_writable);
  if (napi_add_async_cleanup_hook(env, usock_env_cleanup, s, &s->cleanup) != napi_ok) s->cleanup = NULL;
  usock_set_events(s, UV_READABLE);
  napi_value ext;
  if (napi_create_external(env, s, usock_finalize, NULL, &ext) != napi_ok) {
    s->js_done = true; // no JavaScript handle: the close callback frees
    usock_close_now(s);
    return int_value(env, -ENOMEM);
  }
  return ext;
}

// open(onMessage, onWritable, sendBufferMin?): a non-blocking AF_UNIX SOCK_DGRAM socket whose
// poll reads every datagram that arrives, its send buffer raised to sendBufferMin where it is
// smaller (as far as net.core.wmem_max lets; sendBuffer(h) says what it got); an external
// handle, or -errno.
static napi_value usock_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_valuetype t0, t1, t2 = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_typeof(env, argv[0], &t0) != napi_ok || napi_typeof(env, argv[1], &t1) != napi_ok
      || t0 != napi_function || t1 != napi_function
      || (argc > 2 && (napi_typeof(env, argv[2], &t2) != napi_ok || (t2 != napi_number && t2 != napi_undefined)))) {
    napi_throw_type_error(env, NULL, "open(onMessage, onWritable, sendBufferMin?): two functions and a number");
    return NULL;
  }
  int32_t sndbuf_min = 0;
  if (t2 == napi_number) napi_get_value_int32(env, argv[2], &sndbuf_min);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_value(env, -errno);
  if (sndbuf_min > 0 && send_buffer(fd) < sndbuf_min) {
    int half = sndbuf_min / 2 + 1; // Linux doubles what it is given (its own overhead)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &half, sizeof half);
  }
  return socket_handle(env, fd, AF_UNIX, argv[0], argv[1], "afcluster.unixSocket");
}

// sendBuffer(h): the socket's SO_SNDBUF in bytes, or -EBADF.
static napi_value usock_send_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  usock *s = open_socket_arg(env, info, argv, 1, 1);
  return int_value(env, s ? send_buffer(s->fd) : -EBADF);
}

static napi_value usock_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  usock *s = open_socket_arg(env, info, argv, 1, 1);
  return int_value(env, s ? s->fd : -1);
}

// bind(h, path) / connect(h, path): 0 or -errno.
static napi_value usock_addr(napi_env env, napi_callback_info info, bool connecting) {
  napi_value argv[2];
  usock *s = open_socket_arg(env, info, argv, 2, 2);
  if (!s || s->family != AF_UNIX) return int_value(env, -EBADF);
  struct sockaddr_un a;
  socklen_t len = 0;
  int err = path_arg(env, argv[1], &a, &len);
  if (err < 0) return int_value(env, err);
  int r = connecting ? connect(s->fd, (struct sockaddr *)&a, len) : bind(s->fd, (struct sockaddr *)&a, len);
  if (r < 0) return int_value(env, -errno);
  if (connecting) s->connected = true;
  return int_value(env, 0);
}

static napi_value usock_bind(napi_env env, napi_callback_info info) { return usock_addr(env, info, false); }
static napi_value usock_connect(napi_env env, napi_callback_info info) { return usock_addr(env, info, true); }

// One buffer's bytes (a Buffer or any Uint8Array).
static bool bytes_arg(napi_env env, napi_value v, struct iovec *out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0;
    void *data = NULL;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
    out->iov_base = data;
    out->iov_len = length;
    return true;
  }
  return false;
}

// send(h, bytes | bytes[], path?): one datagram of the bytes (several arrays gathered in order),
// to the connected peer or to `path`: 0, or -errno. On a connected socket a full queue (EAGAIN)
// also starts watching for room: onWritable is called once there is.
// The bytes of a send: one Uint8Array, or an array of at most GATHER_MAX; their count, or -1.
static int gather_arg(napi_env env, napi_value v, struct iovec *iov) {
  bool is_array = false;
  napi_is_array(env, v, &is_array);
  if (!is_array) return bytes_arg(env, v, &iov[0]) ? 1 : -1;
  uint32_t count = 0;
  napi_get_array_length(env, v, &count);
  if (count > GATHER_MAX) return -1;
  for (uint32_t i = 0; i < count; i++) {
    napi_value e;
    if (napi_get_element(env, v, i, &e) != napi_ok || !bytes_arg(env, e, &iov[i])) return -1;
  }
  return (int)count;
}

// One datagram of the iovecs, to `name` (NULL: the connected peer), without blocking: 0 or -errno.
static int send_gathered(const usock *s, struct iovec *iov, int n, void *name, socklen_t namelen) {
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = (size_t)n;
  msg.msg_name = name;
  msg.msg_namelen = name ? namelen : 0;
  ssize_t r;
  do r = sendmsg(s->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
  return r >= 0 ? 0 : -errno;
}

static napi_value usock_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  usock *s = open_socket_arg(env, info, argv, 3, 2);
  if (!s || s->family != AF_UNIX) return int_value(env, -EBADF);
  struct iovec iov[GATHER_MAX];
  int n = gather_arg(env, argv[1], iov);
  if (n < 0) return int_value(env, -EINVAL);
  struct sockaddr_un a;
  socklen_t alen = 0;
  napi_valuetype pt = napi_undefined;
  napi_typeof(env, argv[2], &pt); // undefined when not given
  if (pt == napi_string) {
    int err = path_arg(env, argv[2], &a, &alen);
    if (err < 0) return int_value(env, err);
  }
  int err = -send_gathered(s, iov, n, alen > 0 ? &a : NULL, alen);
  if (err == 0) return int_value(env, 0);
  if ((err == EAGAIN || err == ENOBUFS) && s->connected && alen == 0) usock_set_events(s, UV_READABLE | UV_WRITABLE);
  return int_value(env, -(err == ENOBUFS ? EAGAIN : err));
}

// close(h): stops reading and closes the descriptor; later calls on h answer -EBADF.
static napi_value usock_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  usock *s = open_socket_arg(env, info, argv, 1, 1);
  if (!s) return int_value(env, -EBADF);
  usock_close_now(s);
  return int_value(env, 0);
}

// ---- UDP sockets ----

// An IP address and port as a sockaddr (IPv6 may name its scope: "fe80::1%eth0" or "fe80::1%2"):
// its length, or -EINVAL (not an address), or -ENODEV (no such interface for the scope).
static int ip_addr(napi_env env, napi_value host, napi_value port, source_addr *a) {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t n = 0;
  int32_t p = -1;
  memset(a, 0, sizeof *a);
  if (napi_get_value_string_utf8(env, host, text, sizeof text, &n) != napi_ok || n == 0 || n >= sizeof text - 1
      || napi_get_value_int32(env, port, &p) != napi_ok || p < 0 || p > 65535) return -EINVAL;
  if (inet_pton(AF_INET, text, &a->in.sin_addr) == 1) {
    a->in.sin_family = AF_INET;
    a->in.sin_port = htons((uint16_t)p);
    return sizeof a->in;
  }
  char *scope = strchr(text, '%');
  if (scope) *scope++ = '\0';
  if (inet_pton(AF_INET6, text, &a->in6.sin6_addr) != 1) return -EINVAL;
  a->in6.sin6_family = AF_INET6;
  a->in6.sin6_port = htons((uint16_t)p);
  if (scope) {
    // A number (digits only, below 2^32) is the interface's index; anything else its name.
    char *end = NULL;
    errno = 0;
    unsigned long id = *scope >= '0' && *scope <= '9' ? strtoul(scope, &end, 10) : 0;
    bool numeric = end && *end == '\0' && errno == 0 && id <= UINT32_MAX;
    a->in6.sin6_scope_id = numeric ? (uint32_t)id : if_nametoindex(scope);
    if (a->in6.sin6_scope_id == 0) return -ENODEV;
  }
  return sizeof a->in6;
}

// udp.open(family (4 or 6), onMessage, onWritable, bufferBytes): a non-blocking UDP socket, its
// receive and send buffers asked for bufferBytes each (the kernel doubles them, up to
// net.core.rmem_max and wmem_max; recvBuffer/sendBuffer say what it gave); a handle, or -errno.
static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_valuetype t[4];
  int32_t family = 0, bytes = 0;
  bool ok = napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 4;
  for (size_t i = 0; ok && i < 4; i++) ok = napi_typeof(env, argv[i], &t[i]) == napi_ok;
  ok = ok && t[0] == napi_number && t[1] == napi_function && t[2] == napi_function && t[3] == napi_number
    && napi_get_value_int32(env, argv[0], &family) == napi_ok && (family == 4 || family == 6)
    && napi_get_value_int32(env, argv[3], &bytes) == napi_ok && bytes >= 0;
  if (!ok) {
    napi_throw_type_error(env, NULL, "open(family, onMessage, onWritable, bufferBytes): 4 or 6, two functions and a number");
    return NULL;
  }
  int af = family == 4 ? AF_INET : AF_INET6;
  int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_value(env, -errno);
  if (bytes > 0) { // best effort: a refused size keeps the kernel's default
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
  return socket_handle(env, fd, af, argv[1], argv[2], "afcluster.udpSocket");
}

// The open UDP socket a call names first, or NULL.
static usock *udp_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t want, size_t need) {
  usock *s = open_socket_arg(env, info, argv, want, need);
  return s && s->family != AF_UNIX ? s : NULL;
}

// udp.bind(h, host, port, reuseAddr): 0 or -errno.
static napi_value udp_bind(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  usock *s = udp_arg(env, info, argv, 4, 4);
  if (!s) return int_value(env, -EBADF);
  bool reuse = false;
  napi_get_value_bool(env, argv[3], &reuse);
  source_addr a;
  int len = ip_addr(env, argv[1], argv[2], &a);
  if (len < 0) return int_value(env, len);
  if (a.ss.ss_family != s->family) return int_value(env, -EAFNOSUPPORT);
  int one = 1;
  if (reuse && setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return int_value(env, -errno);
  return int_value(env, bind(s->fd, (struct sockaddr *)&a, (socklen_t)len) < 0 ? -errno : 0);
}

// The index of the interface that holds `a` (an IPv6 address), or 0.
static unsigned if_index_of(const struct in6_addr *a) {
  struct ifaddrs *list = NULL, *i;
  unsigned index = 0;
  if (getifaddrs(&list) < 0) return 0;
  for (i = list; i && !index; i = i->ifa_next) {
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6
        && memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a, sizeof *a) == 0) index = if_nametoindex(i->ifa_name);
  }
  freeifaddrs(list);
  return index;
}

// udp.multicast(h, group, iface, join): sends to groups leave from the interface that holds
// `iface` (this node's address), with TTL (hop limit) 1 and loopback on; with join, the socket
// also joins `group` there. 0 or -errno.
static napi_value udp_multicast(napi_env env, napi_callback_info info) {
  napi_value argv[4], zero;
  usock *s = udp_arg(env, info, argv, 4, 4);
  if (!s) return int_value(env, -EBADF);
  bool join = false;
  napi_get_value_bool(env, argv[3], &join);
  napi_create_int32(env, 0, &zero);
  source_addr g, ifa;
  if (ip_addr(env, argv[1], zero, &g) < 0 || ip_addr(env, argv[2], zero, &ifa) < 0
      || g.ss.ss_family != s->family || ifa.ss.ss_family != s->family) return int_value(env, -EINVAL);
  int one = 1;
  if (s->family == AF_INET) {
    struct ip_mreq m = { g.in.sin_addr, ifa.in.sin_addr };
    if ((join && setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) < 0)
        || setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa.in.sin_addr, sizeof ifa.in.sin_addr) < 0
        || setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &one, sizeof one) < 0
        || setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one) < 0) return int_value(env, -errno);
    return int_value(env, 0);
  }
  unsigned index = ifa.in6.sin6_scope_id ? ifa.in6.sin6_scope_id : if_index_of(&ifa.in6.sin6_addr);
  if (index == 0) return int_value(env, -EADDRNOTAVAIL);
  struct ipv6_mreq m;
  m.ipv6mr_multiaddr = g.in6.sin6_addr;
  m.ipv6mr_interface = index;
  if ((join && setsockopt(s->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) < 0)
      || setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) < 0
      || setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &one, sizeof one) < 0
      || setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one) < 0) return int_value(env, -errno);
  return int_value(env, 0);
}

// udp.sockaddr(host, port): the address as the kernel takes it, in a Buffer, for send(); or -EINVAL.
static napi_value udp_sockaddr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return int_value(env, -EINVAL);
  source_addr a;
  int len = ip_addr(env, argv[0], argv[1], &a);
  if (len < 0) return int_value(env, len);
  if (napi_create_buffer_copy(env, (size_t)len, &a, NULL, &out) != napi_ok) return int_value(env, -ENOMEM);
  return out;
}

// udp.sourceKey(host, port): what onMessage gives as the source for a datagram from there (so the
// same address written two ways gives one key); null for an address that is not one.
static napi_value udp_source_key(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out = NULL;
  source_addr a;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 2 && ip_addr(env, argv[0], argv[1], &a) > 0) {
    out = ip_source_key(env, &a);
  }
  if (!out) napi_get_null(env, &out);
  return out;
}

// udp.send(h, bytes | bytes[], to): one datagram of the bytes (parts gathered in order, at most
// 16) to `to`, an address from sockaddr(): 0, or -errno. A full send buffer (EAGAIN) starts
// watching for room: onWritable is called once there is.
static napi_value udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  usock *s = udp_arg(env, info, argv, 3, 3);
  if (!s) return int_value(env, -EBADF);
  struct iovec iov[GATHER_MAX];
  int n = gather_arg(env, argv[1], iov);
  struct iovec to;
  if (n < 0 || !bytes_arg(env, argv[2], &to) || to.iov_len < sizeof(sa_family_t) || to.iov_len > sizeof(struct sockaddr_in6)) return int_value(env, -EINVAL);
  // Only a full send buffer waits for room; ENOBUFS (the kernel short of memory, or a device
  // queue full) says nothing of when there will be room: the datagram is lost, as on a network.
  int err = -send_gathered(s, iov, n, to.iov_base, (socklen_t)to.iov_len);
  if (err == EAGAIN) usock_set_events(s, UV_READABLE | UV_WRITABLE);
  return int_value(env, -err);
}

// udp.recvBuffer(h): SO_RCVBUF in bytes, or -EBADF.
static napi_value udp_recv_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  usock *s = udp_arg(env, info, argv, 1, 1);
  int v = 0;
  socklen_t l = sizeof v;
  if (!s) return int_value(env, -EBADF);
  return int_value(env, getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &v, &l) == 0 ? v : 0);
}

// udp.port(h): the port the socket is bound to (0 before bind), or -errno.
static napi_value udp_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  usock *s = udp_arg(env, info, argv, 1, 1);
  if (!s) return int_value(env, -EBADF);
  source_addr a;
  socklen_t l = sizeof a.ss;
  memset(&a, 0, sizeof a);
  if (getsockname(s->fd, (struct sockaddr *)&a, &l) < 0) return int_value(env, -errno);
  return int_value(env, ntohs(a.ss.ss_family == AF_INET ? a.in.sin_port : a.in6.sin6_port));
}

// release(arrayBuffer): frees its memory now, not when V8 collects it (core/wire/lease.ts): it is
// detached, and every view of it reads as empty from then on. true when it was.
static napi_value release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  bool is = false, done = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1
      && napi_is_arraybuffer(env, argv[0], &is) == napi_ok && is) done = napi_detach_arraybuffer(env, argv[0]) == napi_ok;
  napi_get_boolean(env, done, &out);
  return out;
}

static bool export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok
    && napi_set_named_property(env, exports, name, fn) == napi_ok;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!export_fn(env, exports, "trim", trim)) return NULL;
  if (!export_fn(env, exports, "mallocTune", malloc_tune)) return NULL;
  if (!export_fn(env, exports, "release", release)) return NULL;
  napi_value unix_socket;
  if (napi_create_object(env, &unix_socket) != napi_ok) return NULL;
  if (!export_fn(env, unix_socket, "open", usock_open) || !export_fn(env, unix_socket, "fd", usock_fd)
      || !export_fn(env, unix_socket, "bind", usock_bind) || !export_fn(env, unix_socket, "connect", usock_connect)
      || !export_fn(env, unix_socket, "send", usock_send) || !export_fn(env, unix_socket, "close", usock_close)
      || !export_fn(env, unix_socket, "sendBuffer", usock_send_buffer)) return NULL;
  if (napi_set_named_property(env, exports, "unixSocket", unix_socket) != napi_ok) return NULL;
  napi_value udp;
  if (napi_create_object(env, &udp) != napi_ok) return NULL;
  if (!export_fn(env, udp, "open", udp_open) || !export_fn(env, udp, "bind", udp_bind)
      || !export_fn(env, udp, "multicast", udp_multicast) || !export_fn(env, udp, "sockaddr", udp_sockaddr)
      || !export_fn(env, udp, "sourceKey", udp_source_key) || !export_fn(env, udp, "send", udp_send)
      || !export_fn(env, udp, "recvBuffer", udp_recv_buffer) || !export_fn(env, udp, "sendBuffer", usock_send_buffer)
      || !export_fn(env, udp, "port", udp_port) || !export_fn(env, udp, "fd", usock_fd)
      || !export_fn(env, udp, "close", usock_close)) return NULL;
  if (napi_set_named_property(env, exports, "udpSocket", udp) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
