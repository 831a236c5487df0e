"""Two hosts on one machine, for the deployment-shape test (issue 15, item 3).

Each host is a network namespace (`ip netns`, Debian's iproute2) joined to this machine's own
namespace by a veth pair, its only way out. The shared services — PostgreSQL, Redis and the
site the posts go to — answer on one address of this machine, its end of the first link, which
each host reaches over its own veth link through its default route (an address of this machine
is local to it whichever link a packet comes in by):

    host1 (10.N.1.2) ==veth== 10.N.1.1: PostgreSQL (a relay to 127.0.0.1:5432), a redis-server,
    host2 (10.N.2.2) ==veth== 10.N.2.1   the site; host2 reaches 10.N.1.1 through 10.N.2.1

PostgreSQL here listens on 127.0.0.1 only, and the machine's services are left as they are: a
small TCP relay (this module) listens on the services address and forwards each connection to
127.0.0.1:5432, so the hosts' database traffic crosses their veth links and the relay is the only
hop added. Redis and the site bind the services address themselves.

Where namespaces cannot be made (no CAP_NET_ADMIN, no iproute2), `Network.make` says why and the
same shape runs as separate process groups on loopback (`Network.loopback`).
"""

import contextlib
import os
import random
import selectors
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field


@dataclass
class Host:
    name: str
    address: str  # where its web server listens, reached from this machine
    prefix: list[str] = field(default_factory=list)  # runs a command on the host

    def command(self, args: list[str]) -> list[str]:
        return [*self.prefix, *args]


@dataclass
class Network:
    hosts: list[Host]
    services: str  # the address PostgreSQL, Redis and the site answer on
    namespaces: bool
    why_not: str = ""
    _undo: list[list[str]] = field(default_factory=list)

    @classmethod
    def make(cls, count: int = 2) -> "Network":
        """Namespaces if they can be made here, else the same shape on loopback (saying why)."""
        why = _why_no_namespaces()
        if why:
            return cls.loopback(count, why)
        tag = f"{os.getpid() % 1000:03d}{random.randrange(100):02d}"
        net = random.randrange(64, 250)  # 10.net.0.0/16, with a tag of the test's own
        # The services answer on this machine's end of the first link; the second host reaches
        # it through its own link (an address of this machine, whichever link it came in by).
        network = cls(hosts=[], services=f"10.{net}.1.1", namespaces=True)
        try:
            for number in range(1, count + 1):
                namespace, outside, inside = f"cxhub-{tag}-{number}", f"cxo{tag}{number}", "eth0"
                near, far = f"10.{net}.{number}.1", f"10.{net}.{number}.2"
                network._run(["ip", "netns", "add", namespace])
                network._undo.append(["ip", "netns", "del", namespace])
                peer = f"cxi{tag}{number}"
                network._run(["ip", "link", "add", outside, "type", "veth", "peer", "name", peer])
                network._undo.append(["ip", "link", "del", outside])
                network._run(["ip", "link", "set", peer, "netns", namespace])
                inns = ["ip", "netns", "exec", namespace]
                network._run([*inns, "ip", "link", "set", peer, "name", inside])
                network._run(["ip", "addr", "add", f"{near}/24", "dev", outside])
                network._run(["ip", "link", "set", outside, "up"])
                network._run([*inns, "ip", "addr", "add", f"{far}/24", "dev", inside])
                network._run([*inns, "ip", "link", "set", inside, "up"])
                network._run([*inns, "ip", "link", "set", "lo", "up"])
                network._run([*inns, "ip", "route", "add", "default", "via", near])
                network.hosts.append(Host(name=f"host{number}", address=far, prefix=inns))
        except BaseException:
            network.close()
            raise
        return network

    @classmethod
    def loopback(cls, count: int, why: str) -> "Network":
        hosts = [Host(name=f"host{number}", address="127.0.0.1") for number in range(1, count + 1)]
        return cls(hosts=hosts, services="127.0.0.1", namespaces=False, why_not=why)

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")

    def close(self) -> None:
        for args in reversed(self._undo):
            subprocess.run(args, capture_output=True, timeout=30, check=False)
        self._undo.clear()


def _why_no_namespaces() -> str:
    """Why network namespaces cannot be made here ('' when they can)."""
    if not shutil.which("ip"):
        return "iproute2's `ip` is not installed"
    probe = f"cxhub-probe-{os.getpid()}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return ""


class Relay:
    """A TCP relay: listens on (host, port) and pipes each connection to `target`, both ways,
    until either side closes. One thread for all connections (a selector)."""

    def __init__(self, host: str, port: int, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.peers: dict[socket.socket, socket.socket] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "Relay":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        for sock in list(self.peers):
            self._drop(sock)
        self.selector.close()
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            for key, _events in self.selector.select(timeout=0.2):
                if key.data is None:
                    self._accept()
                else:
                    self._pipe(key.fileobj)

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            client, _ = self.listener.accept()
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                return
            for sock in (client, upstream):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.peers[client], self.peers[upstream] = upstream, client
            self.selector.register(client, selectors.EVENT_READ, "pipe")
            self.selector.register(upstream, selectors.EVENT_READ, "pipe")

    def _pipe(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
            if data:
                self.peers[sock].setblocking(True)
                self.peers[sock].sendall(data)
                self.peers[sock].setblocking(False)
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self.peers.pop(sock, None)
        for each in (sock, other):
            if each is None:
                continue
            self.peers.pop(each, None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(each)
            with contextlib.suppress(OSError):
                each.close()
