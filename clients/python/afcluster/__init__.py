"""afcluster: cluster sockets from Python, standard library only (docs/PROTOCOL.md).

    from afcluster import ClusterSocket
    with ClusterSocket("/run/afcluster/afcluster.sock") as s:
        s.bind("demo")
        s.send(b"hello")
        while (ev := s.next_event(timeout=5)) is not None:
            print(ev["type"], ev.get("text"))

Speaks protocol version 3 (view ids, quorum) and falls back to 2 and 1 with older daemons.
`python3 -m afcluster SOCKET GROUP [MESSAGE ...]` prints a group's events as JSON lines.
"""
import os
import socket
import struct
import tempfile
import time

__version__ = "0.1.0"
__all__ = ["ClusterSocket", "ClusterError", "DEFAULT_SOCKET", "__version__"]

DEFAULT_SOCKET = "/run/afcluster/afcluster.sock"
MAGIC, VERSION, VERSION_BATCH, VERSION_VIEWS = 0x4146, 1, 2, 3
HELLO, CLOSE, BIND, UNBIND, SEND, MEMBERS, LOCAL_NODE, STATS, SEND_PART, QUORUM = range(1, 11)
EV_MESSAGE, EV_MEMBERSHIP, EV_ERROR, EV_MESSAGE_PART, EV_WRITABLE, BATCH = 0x41, 0x42, 0x43, 0x44, 0x45, 0x46
EV_MEMBERSHIP_V3, EV_QUORUM = 0x47, 0x48  # version 3 (section 10)
QUORUM_FLAGS = ["disabled", "two_node", "wait_for_all", "wait_for_all_pending", "last_man_standing", "auto_tie_breaker"]
RESUME = 0x01  # SEND flag (version 2): one send at a time, so every SEND may carry it (section 9)
SEND_MAX, PART_MAX = 65525, 65513  # payload of one SEND, of one SEND_PART
ORDERS = ["fifo", "agreed", "safe"]
REASONS = ["join", "leave", "nodedown", "procdown", "overrun"]
ERRNO = {11: "EAGAIN", 22: "EINVAL", 24: "EMFILE", 36: "ENAMETOOLONG", 71: "EPROTO", 90: "EMSGSIZE",
         95: "EOPNOTSUPP", 98: "EADDRINUSE", 105: "ENOBUFS", 107: "ENOTCONN", 110: "ETIMEDOUT",
         111: "ECONNREFUSED"}
ECONNREFUSED, ETIMEDOUT = 111, 110


class ClusterError(Exception):
    """A request the daemon refused, or a daemon that cannot be reached. `code` is the errno name
    ("ENOTCONN", "EMSGSIZE", ...), `status` its number."""

    def __init__(self, status, what):
        self.status = status
        self.code = ERRNO.get(status, str(status))
        super().__init__(f"{what}: {self.code}")


class Reader:
    """Reads big-endian fields of one datagram (section 2 of the protocol)."""

    def __init__(self, data, at=0):
        self.data, self.at = data, at

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return v

    def u8(self): return self.take(">B")[0]
    def u16(self): return self.take(">H")[0]
    def u32(self): return self.take(">I")[0]

    def string(self):
        n = self.u16()
        s = self.data[self.at:self.at + n].decode("utf-8")
        self.at += n
        return s

    def member(self): return dict(zip(("nodeId", "pid", "port"), self.take(">III")))
    def ring(self): return "%d.%d" % self.take(">IQ")
    def rest(self): return self.data[self.at:]

    def quorum(self):
        """The quorum block (section 10): flags, votes, expected, quorum."""
        bits, votes, expected, quorum = self.take(">HIII")
        flags = [f for i, f in enumerate(QUORUM_FLAGS) if bits & (2 << i)]
        return {"quorate": bool(bits & 1), "votes": votes, "expected": expected, "quorum": quorum, "flags": flags}


def decode_event(op, r):
    if op == EV_MESSAGE:
        group, sender, order = r.string(), r.member(), ORDERS[r.u8()]
        data = bytes(r.rest())
        return {"type": "message", "group": group, "sender": sender, "order": order,
                "data": data, "text": data.decode("utf-8", "replace")}
    if op in (EV_MEMBERSHIP, EV_MEMBERSHIP_V3):
        ev = {"type": "membership", "group": r.string(), "kind": ["regular", "transitional"][r.u8()], "ringId": r.ring()}
        if op == EV_MEMBERSHIP_V3:
            view_ring = r.ring()
            ev["viewId"] = "%s/%d" % (view_ring, r.u32())
            ev["quorum"] = r.quorum()
        ev["members"] = [r.member() for _ in range(r.u32())]
        for key in ("joined", "left"):
            ev[key] = [{"member": r.member(), "reason": REASONS[r.u8()]} for _ in range(r.u32())]
        return ev
    if op == EV_QUORUM:
        return {"type": "quorum", "group": r.string(), "ringId": r.ring(), "quorum": r.quorum()}
    if op == EV_ERROR:
        status = r.u16()
        return {"type": "error", "code": ERRNO.get(status, status), "message": r.string()}
    return {"type": "unknown", "op": op}


class ClusterSocket:
    """A cluster socket on the node whose daemon listens at `daemon_path` (default: $AFCLUSTER_SOCKET,
    else /run/afcluster/afcluster.sock). Bind it to a group, send, and read events with next_event().
    Also a context manager (closes on exit)."""

    def __init__(self, daemon_path=None, timeout=10.0):
        self.daemon = daemon_path or os.environ.get("AFCLUSTER_SOCKET") or DEFAULT_SOCKET
        self.timeout = timeout
        self.path = os.path.join(tempfile.gettempdir(), "afc-py-%d-%s.sock" % (os.getpid(), os.urandom(3).hex()))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)  # the daemon answers to this path
        os.chmod(self.path, 0o600)
        self.closed = False
        self.next_id = 0
        self.next_msg_id = 0
        self.events = []  # events that arrived while waiting for a reply
        self.inbox = []  # single datagrams of a BATCH container not read yet
        self.partial = None  # a MESSAGE_PART message being put together
        self.writable = False  # a WRITABLE event came (version 2, section 9)
        # The newest version first; a daemon that does not speak it answers EPROTO (71): one lower.
        for self.version in (VERSION_VIEWS, VERSION_BATCH, VERSION):
            try:
                r = self.call(HELLO, struct.pack(">I", os.getpid()), version=self.version)
                break
            except ClusterError as e:
                if e.status != 71 or self.version == VERSION:
                    self.sock.close()
                    os.unlink(self.path)
                    raise
        self.batch = self.version >= VERSION_BATCH
        self.node_id, self.pid, self.port, self.message_size_max = r.take(">IIII")
        self.driver = r.string()

    def call(self, op, body=b"", version=VERSION):
        """Send one request; return a Reader on the reply's result. Raises ClusterError on a status."""
        self.next_id += 1
        rid = self.next_id
        try:
            self.sock.sendto(struct.pack(">HBBI", MAGIC, version, op, rid) + body, self.daemon)
        except OSError as e:
            raise ClusterError(ECONNREFUSED, f"cannot reach the daemon at {self.daemon} ({e.strerror}); is it running, and may you use its socket?") from e
        deadline = time.monotonic() + self.timeout
        while True:
            data = self.recv(deadline)
            if data is None:
                raise ClusterError(ETIMEDOUT, f"no reply to op {op} from {self.daemon} in {self.timeout} s")
            magic, version, rop, got = struct.unpack_from(">HBBI", data)
            if magic != MAGIC or version not in (VERSION, VERSION_BATCH, VERSION_VIEWS):
                continue
            if rop & 0x80:
                if got != rid:
                    continue
                status = struct.unpack_from(">H", data, 8)[0]
                if status != 0:
                    raise ClusterError(status, f"op {op}")
                return Reader(data, 10)
            ev = self.decode(rop, data)
            if ev is not None:
                self.events.append(ev)

    def decode(self, op, data):
        """An event, or None while a large message is still arriving in parts (or for WRITABLE)."""
        if op == EV_WRITABLE:
            self.writable = True
            return None
        if op != EV_MESSAGE_PART:
            return decode_event(op, Reader(data, 8))
        r = Reader(data, 8)
        group, sender, order = r.string(), r.member(), ORDERS[r.u8()]
        msg_id, total, offset = r.take(">III")
        if offset == 0:
            self.partial = (msg_id, total, bytearray())
        if not self.partial or self.partial[0] != msg_id or len(self.partial[2]) != offset:
            self.partial = None  # a gap: drop it
            return None
        self.partial[2].extend(r.rest())
        if len(self.partial[2]) < total:
            return None
        body, self.partial = bytes(self.partial[2]), None
        return {"type": "message", "group": group, "sender": sender, "order": order,
                "data": body, "text": body.decode("utf-8", "replace")}

    def recv(self, deadline):
        """The next single datagram: BATCH containers (section 9) are opened here."""
        if self.inbox:
            return self.inbox.pop(0)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        if len(data) < 10 or data[2] != VERSION_BATCH or data[3] != BATCH:
            return data
        r = Reader(data, 8)
        for _ in range(r.u16()):
            n = r.u16()
            self.inbox.append(data[r.at:r.at + n])
            r.at += n
        return self.inbox.pop(0) if self.inbox else None

    def wait_writable(self, seconds):
        """After EAGAIN: wait for the daemon's WRITABLE event (at most `seconds`), keeping other events."""
        deadline = time.monotonic() + seconds
        while not self.writable:
            data = self.recv(deadline)
            if data is None:
                break
            magic, version, op, _ = struct.unpack_from(">HBBI", data)
            if magic == MAGIC and not op & 0x80:
                ev = self.decode(op, data)
                if ev is not None:
                    self.events.append(ev)
        self.writable = False

    def bind(self, group, self_delivery=True):
        g = group.encode("utf-8")
        self.call(BIND, struct.pack(">BH", 1 if self_delivery else 0, len(g)) + g)

    def send_parts(self, data, order):
        """A message larger than one datagram: SEND_PART from offset 0 (any error drops it whole)."""
        self.next_msg_id += 1
        for offset in range(0, len(data), PART_MAX):
            head = struct.pack(">BBIII", ORDERS.index(order), 0, self.next_msg_id, len(data), offset)
            self.call(SEND_PART, head + data[offset:offset + PART_MAX])

    def send(self, data, order="agreed"):
        """Sends; while the daemon answers EAGAIN (backpressure) waits for WRITABLE, then resends."""
        while True:
            try:
                if len(data) > SEND_MAX:
                    self.send_parts(data, order)
                else:
                    self.call(SEND, struct.pack(">BB", ORDERS.index(order), RESUME if self.batch else 0) + data)
                return
            except ClusterError as e:
                if e.status != 11:
                    raise
                self.wait_writable(0.05)

    def quorum(self):
        """The node's quorum state and every configured node (version 3), or None from an older daemon."""
        if self.version < VERSION_VIEWS:
            return None
        r = self.call(QUORUM)
        state = r.quorum()
        state["nodes"] = [dict(zip(("nodeId", "votes", "present"), r.take(">IIB"))) for _ in range(r.u32())]
        return state

    def members(self):
        r = self.call(MEMBERS)
        group = r.string()
        return group, [r.member() for _ in range(r.u32())]

    def next_event(self, timeout=None):
        """The next event (a dict: type message, membership, quorum or error), or None after
        `timeout` seconds (default: the socket's timeout)."""
        return self.next_event_until(time.monotonic() + (self.timeout if timeout is None else timeout))

    def next_event_until(self, deadline):
        if self.events:
            return self.events.pop(0)
        while True:
            data = self.recv(deadline)
            if data is None:
                return None
            magic, version, op, _ = struct.unpack_from(">HBBI", data)
            if magic == MAGIC and version in (VERSION, VERSION_BATCH, VERSION_VIEWS) and not op & 0x80:
                ev = self.decode(op, data)
                if ev is not None:
                    return ev

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.call(CLOSE)
        except ClusterError:
            pass  # the daemon is gone: nothing to close there
        finally:
            self.sock.close()
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
