#!/usr/bin/env python3
"""A cluster socket in Python: the example `afcluster up` suggests, run from a checkout.

usage: python3 examples/python-client.py SOCKET GROUP [MESSAGE ...] [--expect N] [--timeout S]

It is `python3 -m afcluster` of the package in clients/python (standard library only, written
from docs/PROTOCOL.md alone; `pip install clients/python` installs it), run without installing:
opens a cluster socket on the daemon at SOCKET, prints the node's quorum state, binds it to
GROUP, sends each MESSAGE (@N sends N bytes of "x"; a large message goes in SEND_PART parts) and
prints every event as one JSON line until it has received N messages (default: as many as it
sent) or S seconds passed (default 20). It speaks protocol version 3 (view ids, quorum) and
falls back to 2 and 1. Exit status 0 when it received the messages it expected, 1 otherwise.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

from afcluster.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
