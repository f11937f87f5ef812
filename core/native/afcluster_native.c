// The native helper of the daemon and the client (Node-API, so one build serves every Node
// version from 20 on):
//  - trim(): glibc's malloc_trim, so a daemon can hand back to the kernel the memory its
//    allocator kept after a load (core/af/memory.ts); mallocTune(): glibc's thresholds for a
//    process that trims itself, so a load does not hand memory back and fault it in per buffer;
//  - unix datagram sockets (core/af/unix.ts): each datagram is received straight into a buffer of
//    its own size (its size from a peek), so datagrams of any size the sender's socket allows
//    arrive whole and are copied once, by the kernel; a send gathers several buffers (a header
//    and a payload need not be joined first) and reports failure as -errno, without an Error.
#define _GNU_SOURCE
#define NAPI_VERSION 8 // async cleanup hooks: a Worker's sockets close before its env goes
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int events;     // what the poll watches now
  bool connected;
  bool closed;
  // The struct lives until both are done: the poll handle (closed by close(), then libuv's close
  // callback) and the JavaScript handle (its finalizer). Calls on a closed handle answer -EBADF.
  bool poll_done;
  bool js_done;
  napi_ref on_message; // (buf: Buffer, path: string | null) => void
  napi_ref on_writable;
  napi_async_context actx;
  // Holds the env (a Worker's, say) open until the poll handle is closed; removed then.
  napi_async_cleanup_hook_handle cleanup;
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
    // The next datagram's size, without taking it (MSG_TRUNC: its whole size, whatever the
    // buffer): EAGAIN when the queue is empty. (SIOCINQ would say 0 for an empty queue, and a
    // datagram arriving before the recvmsg would then be cut to the buffer it was given.)
    ssize_t next;
    do next = recv(s->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT); while (next < 0 && errno == EINTR);
    if (next < 0) break;
    size_t cap = next <= 0 ? 1 : (size_t)next > READ_MAX ? READ_MAX : (size_t)next;
    napi_handle_scope each; // one datagram's handles at a time
    if (napi_open_handle_scope(env, &each) != napi_ok) break;
    void *data = NULL;
    napi_value buf;
    if (napi_create_buffer(env, cap, &data, &buf) != napi_ok) { napi_close_handle_scope(env, each); break; }
    // One byte more than sockaddr_un, zeroed: a path of the full 108 bytes has no NUL of its own.
    union { struct sockaddr_un un; char bytes[sizeof(struct sockaddr_un) + 1]; } name;
    memset(&name, 0, sizeof name);
    struct sockaddr_un *from = &name.un;
    struct iovec iov = { data, cap };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &name;
    msg.msg_namelen = sizeof name.un;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t r;
    do r = recvmsg(s->fd, &msg, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
    if (r < 0) { napi_close_handle_scope(env, each); break; }
    // Cut only when over READ_MAX (then over every limit, and refused as such); otherwise it
    // cannot be (one reader, the size peeked), and a cut datagram is never passed on.
    bool cut = (msg.msg_flags & MSG_TRUNC) != 0;
    if ((cut && cap < READ_MAX) || ((size_t)r != cap && !cut && napi_create_buffer_copy(env, (size_t)r, data, NULL, &buf) != napi_ok)) {
      napi_close_handle_scope(env, each);
      continue;
    }
    napi_value argv[2];
    size_t namelen = msg.msg_namelen < sizeof name.bytes ? msg.msg_namelen : sizeof name.bytes;
    size_t pathlen = namelen > offsetof(struct sockaddr_un, sun_path)
      ? strnlen(from->sun_path, namelen - offsetof(struct sockaddr_un, sun_path)) : 0;
    if (pathlen > 0 && from->sun_path[0] != '\0') napi_create_string_utf8(env, from->sun_path, pathlen, &argv[1]);
    else napi_get_null(env, &argv[1]);
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
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return int_value(env, -EINVAL);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_value(env, -errno);
  if (sndbuf_min > 0 && send_buffer(fd) < sndbuf_min) {
    int half = sndbuf_min / 2 + 1; // Linux doubles what it is given (its own overhead)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &half, sizeof half);
  }
  usock *s = calloc(1, sizeof *s);
  if (!s) { close(fd); return int_value(env, -ENOMEM); }
  s->env = env;
  s->fd = fd;
  napi_value name;
  napi_create_string_utf8(env, "afcluster.unixSocket", NAPI_AUTO_LENGTH, &name);
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
  napi_create_reference(env, argv[0], 1, &s->on_message);
  napi_create_reference(env, argv[1], 1, &s->on_writable);
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
  if (!s) return int_value(env, -EBADF);
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
static napi_value usock_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  usock *s = open_socket_arg(env, info, argv, 3, 2);
  if (!s) return int_value(env, -EBADF);
  struct iovec iov[GATHER_MAX];
  size_t n = 0;
  bool is_array = false;
  napi_is_array(env, argv[1], &is_array);
  if (is_array) {
    uint32_t count = 0;
    napi_get_array_length(env, argv[1], &count);
    if (count > GATHER_MAX) return int_value(env, -EINVAL);
    for (uint32_t i = 0; i < count; i++) {
      napi_value e;
      if (napi_get_element(env, argv[1], i, &e) != napi_ok || !bytes_arg(env, e, &iov[n])) return int_value(env, -EINVAL);
      n++;
    }
  } else {
    if (!bytes_arg(env, argv[1], &iov[0])) return int_value(env, -EINVAL);
    n = 1;
  }
  struct sockaddr_un a;
  socklen_t alen = 0;
  napi_valuetype pt = napi_undefined;
  napi_typeof(env, argv[2], &pt); // undefined when not given
  if (pt == napi_string) {
    int err = path_arg(env, argv[2], &a, &alen);
    if (err < 0) return int_value(env, err);
  }
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  if (alen > 0) { msg.msg_name = &a; msg.msg_namelen = alen; }
  ssize_t r;
  do r = sendmsg(s->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
  if (r >= 0) return int_value(env, 0);
  int err = errno;
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

static bool export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok
    && napi_set_named_property(env, exports, name, fn) == napi_ok;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!export_fn(env, exports, "trim", trim)) return NULL;
  if (!export_fn(env, exports, "mallocTune", malloc_tune)) return NULL;
  napi_value unix_socket;
  if (napi_create_object(env, &unix_socket) != napi_ok) return NULL;
  if (!export_fn(env, unix_socket, "open", usock_open) || !export_fn(env, unix_socket, "fd", usock_fd)
      || !export_fn(env, unix_socket, "bind", usock_bind) || !export_fn(env, unix_socket, "connect", usock_connect)
      || !export_fn(env, unix_socket, "send", usock_send) || !export_fn(env, unix_socket, "close", usock_close)
      || !export_fn(env, unix_socket, "sendBuffer", usock_send_buffer)) return NULL;
  if (napi_set_named_property(env, exports, "unixSocket", unix_socket) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
