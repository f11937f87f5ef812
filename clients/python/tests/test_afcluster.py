"""The afcluster Python package against running daemons: set AFCLUSTER_SOCKET (a node's socket)
and AFCLUSTER_SOCKET_2 (another node's); without them every test is skipped.
Run: python3 -m unittest discover -s tests -v"""
import os
import unittest

import afcluster
from afcluster import ClusterError, ClusterSocket

SOCKET = os.environ.get("AFCLUSTER_SOCKET")
SOCKET_2 = os.environ.get("AFCLUSTER_SOCKET_2")


def events_until(sock, want, timeout=20):
    """Events until `want(ev)` is true for one; fails when none comes for `timeout` seconds."""
    got = []
    while True:
        ev = sock.next_event(timeout=timeout)
        if ev is None:
            raise AssertionError(f"no wanted event in {timeout} s; got {got}")
        got.append(ev)
        if want(ev):
            return got


@unittest.skipUnless(SOCKET and SOCKET_2, "set AFCLUSTER_SOCKET and AFCLUSTER_SOCKET_2 to two nodes' sockets")
class AgainstDaemons(unittest.TestCase):
    def test_open_says_who_and_quorum(self):
        with ClusterSocket(SOCKET) as s:
            self.assertEqual(s.version, 3)
            self.assertIn(s.driver, ("totem", "cman"))
            self.assertEqual(s.pid, os.getpid())
            q = s.quorum()
            self.assertTrue(q["quorate"])
            self.assertEqual(len(q["nodes"]), q["expected"])

    def test_bind_send_receive_own_messages_large_too(self):
        with ClusterSocket(SOCKET) as s:
            s.bind("py-own")
            join = events_until(s, lambda ev: ev["type"] == "membership")[-1]
            self.assertEqual(join["joined"][0]["member"]["pid"], os.getpid())
            self.assertRegex(join["viewId"], r"^\d+\.\d+/\d+$")
            s.send(b"one")
            s.send(b"x" * 150_000)
            s.send("three".encode())
            got = [ev for ev in events_until(s, lambda ev: ev["type"] == "message" and ev["data"] == b"three") if ev["type"] == "message"]
            self.assertEqual([ev["data"] for ev in got], [b"one", b"x" * 150_000, b"three"])
            self.assertTrue(all(ev["sender"]["pid"] == os.getpid() for ev in got))

    def test_another_node_sees_the_message_and_the_members(self):
        with ClusterSocket(SOCKET) as a, ClusterSocket(SOCKET_2) as b:
            self.assertNotEqual(a.node_id, b.node_id)
            a.bind("py-two")
            events_until(a, lambda ev: ev["type"] == "membership")
            b.bind("py-two", self_delivery=False)
            events_until(a, lambda ev: ev["type"] == "membership" and len(ev["members"]) == 2)
            b.send(b"from the other node")
            msg = events_until(a, lambda ev: ev["type"] == "message")[-1]
            self.assertEqual((msg["data"], msg["sender"]["nodeId"]), (b"from the other node", b.node_id))
            group, members = a.members()
            self.assertEqual((group, sorted(m["nodeId"] for m in members)), ("py-two", sorted([a.node_id, b.node_id])))

    def test_errors_carry_codes(self):
        with ClusterSocket(SOCKET) as s:
            with self.assertRaises(ClusterError) as e:
                s.send(b"not bound yet")
            self.assertEqual(e.exception.code, "ENOTCONN")
        with self.assertRaises(ClusterError) as e:
            ClusterSocket(SOCKET + ".missing")
        self.assertEqual(e.exception.code, "ECONNREFUSED")
        self.assertIn(".missing", str(e.exception))


class Offline(unittest.TestCase):
    def test_module(self):
        self.assertEqual(afcluster.__version__, "0.1.0")
        self.assertEqual(afcluster.DEFAULT_SOCKET, "/run/afcluster/afcluster.sock")


if __name__ == "__main__":
    unittest.main()
