#!/usr/bin/env python3
"""A cluster socket in Python, standard library only, written from docs/PROTOCOL.md alone.

usage: python3 examples/python-client.py SOCKET GROUP [MESSAGE ...] [--expect N] [--timeout S]

A MESSAGE of the form @N sends N bytes of "x" (a large message goes in SEND_PART parts);
received messages over 64 characters print as their length and first characters.

Opens a cluster socket on the daemon at SOCKET, prints the node's quorum state, binds it to GROUP
(with self-delivery), sends each MESSAGE, and prints every event as one JSON line until it has
received N messages (default: as many as it sent) or S seconds passed (default 20). Then it
closes. It speaks protocol version 3 (view ids, quorum) and falls back to 2 and 1.
Exit status 0 when it received the messages it expected, 1 otherwise.
"""
import json
import os
import socket
import struct
import sys
import tempfile
import time

MAGIC, VERSION, VERSION_BATCH, VERSION_VIEWS = 0x4146, 1, 2, 3
HELLO, CLOSE, BIND, UNBIND, SEND, MEMBERS, LOCAL_NODE, STATS, SEND_PART, QUORUM = range(1, 11)
EV_MESSAGE, EV_MEMBERSHIP, EV_ERROR, EV_MESSAGE_PART, EV_WRITABLE, BATCH = 0x41, 0x42, 0x43, 0x44, 0x45, 0x46
EV_MEMBERSHIP_V3, EV_QUORUM = 0x47, 0x48  # version 3 (section 10)
QUORUM_FLAGS = ["disabled", "two_node", "wait_for_all", "wait_for_all_pending", "last_man_standing", "auto_tie_breaker"]
RESUME = 0x01  # SEND flag (version 2): one send at a time, so every SEND may carry it (section 9)
SEND_MAX, PART_MAX = 65525, 65513  # payload of one SEND, of one SEND_PART
ORDERS = ["fifo", "agreed", "safe"]
REASONS = ["join", "leave", "nodedown", "procdown", "overrun"]
ERRNO = {11: "EAGAIN", 22: "EINVAL", 71: "EPROTO", 90: "EMSGSIZE", 95: "EOPNOTSUPP",
         98: "EADDRINUSE", 105: "ENOBUFS", 107: "ENOTCONN"}


class ClusterError(Exception):
    def __init__(self, status, what):
        super().__init__(f"{what}: {ERRNO.get(status, status)}")
        self.status = status


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
        return {"type": "message", "group": group, "sender": sender, "order": order,
                "text": r.rest().decode("utf-8", "replace")}
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
    def __init__(self, daemon_path, timeout=10.0):
        self.daemon = daemon_path
        self.timeout = timeout
        self.path = os.path.join(tempfile.gettempdir(), "afc-py-%d-%s.sock" % (os.getpid(), os.urandom(3).hex()))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)  # the daemon answers to this path
        os.chmod(self.path, 0o600)
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
                    raise
        self.batch = self.version >= VERSION_BATCH
        self.node_id, self.pid, self.port, self.message_size_max = r.take(">IIII")
        self.driver = r.string()

    def call(self, op, body=b"", version=VERSION):
        """Send one request; return a Reader on the reply's result. Raises ClusterError on a status."""
        self.next_id += 1
        rid = self.next_id
        self.sock.sendto(struct.pack(">HBBI", MAGIC, version, op, rid) + body, self.daemon)
        deadline = time.monotonic() + self.timeout
        while True:
            data = self.recv(deadline)
            if data is None:
                raise TimeoutError(f"no reply to op {op} from {self.daemon}")
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
                "text": body.decode("utf-8", "replace")}

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

    def next_event(self, deadline):
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
        try:
            self.call(CLOSE)
        finally:
            self.sock.close()
            os.unlink(self.path)


def main(argv):
    args, expect, timeout = [], None, 20.0
    i = 0
    while i < len(argv):
        if argv[i] == "--expect":
            expect, i = int(argv[i + 1]), i + 2
        elif argv[i] == "--timeout":
            timeout, i = float(argv[i + 1]), i + 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, group, messages = args[0], args[1], args[2:]
    s = ClusterSocket(path)
    print(json.dumps({"type": "open", "self": {"nodeId": s.node_id, "pid": s.pid, "port": s.port}, "driver": s.driver,
                      "version": s.version}), flush=True)
    print(json.dumps({"type": "quorum-state", "quorum": s.quorum()}), flush=True)
    s.bind(group)
    order = "agreed"
    for m in messages:
        data = b"x" * int(m[1:]) if m.startswith("@") else m.encode("utf-8")
        try:
            s.send(data, order)
        except ClusterError as e:
            if e.status != 95:  # EOPNOTSUPP: this driver has no total order (cman): use fifo
                raise
            order = "fifo"
            s.send(data, order)
    want = len(messages) if expect is None else expect
    got, deadline = 0, time.monotonic() + timeout
    while got < want:
        ev = s.next_event(deadline)
        if ev is None:
            break
        if ev["type"] == "message" and len(ev["text"]) > 64:
            ev = dict(ev, text="%d bytes: %s..." % (len(ev["text"]), ev["text"][:16]))
        print(json.dumps(ev), flush=True)
        got += ev["type"] == "message"
    group_name, members = s.members()
    print(json.dumps({"type": "members", "group": group_name, "members": members}), flush=True)
    s.close()
    return 0 if got >= want else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
