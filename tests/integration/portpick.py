"""portpick.py: free TCP ports on 127.0.0.1 for integration tests.

A port is drawn at random below the kernel's ephemeral range (which starts
at 32768), where neither outgoing connections nor port-0 binds of tests
running in parallel land, and is handed out once per process. It is free
when checked; the daemon given it binds it moments later."""
import random
import socket

_given = set()


def free_port():
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free TCP port in 20000-32000")
