"""python3 -m afcluster SOCKET GROUP [MESSAGE ...] [--expect N] [--timeout S]

Opens a cluster socket on the daemon at SOCKET, prints the node's quorum state, binds it to GROUP,
sends each MESSAGE (@N: N bytes of "x"), and prints every event as one JSON line until it has
received N messages (default: as many as it sent) or S seconds passed (default 20).
Exit status 0 when it received the messages it expected, 1 otherwise, 2 for a usage error.
"""
import json
import sys
import time

from . import ClusterError, ClusterSocket

USAGE = __doc__


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
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
        print(USAGE, file=sys.stderr)
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
        ev = s.next_event_until(deadline)
        if ev is None:
            break
        ev = {k: v for k, v in ev.items() if k != "data"}
        if ev["type"] == "message" and len(ev["text"]) > 64:
            ev = dict(ev, text="%d bytes: %s..." % (len(ev["text"]), ev["text"][:16]))
        print(json.dumps(ev), flush=True)
        got += ev["type"] == "message"
    group_name, members = s.members()
    print(json.dumps({"type": "members", "group": group_name, "members": members}), flush=True)
    s.close()
    return 0 if got >= want else 1


if __name__ == "__main__":
    sys.exit(main())
