#!/usr/bin/python3
"""The workload corpus's Python program.

    python3 python.py [SECTION...]

runs the named sections (all when none is named) and prints "python: OK"
when every one passed. Each section raises on failure; the traceback names
the failing call and the exit status is 1.
"""

import asyncio
import multiprocessing
import os
import selectors
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


def threads():
    lock = threading.Lock()
    cond = threading.Condition()
    total = [0]

    def work(n):
        for _ in range(1000):
            with lock:
                total[0] += n

    ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert total[0] == 1000 * sum(range(16)), total
    # A condition wait with a timeout (futex with a deadline).
    with cond:
        assert not cond.wait(timeout=0.01)
    ev = threading.Event()
    threading.Timer(0.01, ev.set).start()
    assert ev.wait(5)


def subprocesses():
    out = subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 3"],
                         capture_output=True, text=True, timeout=30)
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n"), out
    # close_fds (close_range), a pipeline, a new session and process group.
    p1 = subprocess.Popen(["seq", "1", "1000"], stdout=subprocess.PIPE)
    p2 = subprocess.Popen(["sort", "-rn"], stdin=p1.stdout,
                          stdout=subprocess.PIPE, start_new_session=True)
    p1.stdout.close()
    top = p2.communicate(timeout=30)[0].split()[0]
    assert top == b"1000", top
    assert p1.wait(timeout=30) == 0
    p = subprocess.Popen(["sleep", "30"], process_group=0)
    assert os.getpgid(p.pid) == p.pid
    assert os.getsid(p.pid) == os.getsid(0)
    p.terminate()
    assert p.wait(timeout=30) == -signal.SIGTERM
    # posix_spawn and os.fork + waitpid directly.
    pid = os.posix_spawnp("true", ["true"], dict(os.environ))
    assert os.waitpid(pid, 0)[1] == 0
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7


def tcp(family, host):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection((host, port), timeout=10) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        msg = os.urandom(200000)
        c.sendall(msg)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := c.recv(65536):
            got += chunk
        assert got == msg, len(got)
    t.join()
    srv.close()


def sockets():
    tcp(socket.AF_INET, "127.0.0.1")
    if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"):
        tcp(socket.AF_INET6, "::1")
    # UDP: sendto/recvfrom, and sendmsg/recvmsg.
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.settimeout(10)
    a.settimeout(10)
    b.sendto(b"ping", a.getsockname())
    data, peer = a.recvfrom(100)
    assert data == b"ping"
    a.sendmsg([b"po", b"ng"], [], 0, peer)
    assert b.recvmsg(100)[0] == b"pong"
    a.close()
    b.close()
    # Unix sockets: a pair, and a named one in the work directory.
    x, y = socket.socketpair()
    x.sendall(b"unix")
    assert y.recv(10) == b"unix"
    x.close()
    y.close()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s")
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.bind(path)
        u.listen()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        s, _ = u.accept()
        c.sendall(b"named")
        assert s.recv(10) == b"named"
        for o in (s, c, u):
            o.close()
    # Name resolution through /etc/hosts (getaddrinfo).
    addrs = {ai[4][0] for ai in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)}
    assert "127.0.0.1" in addrs, addrs
    # asyncio: the epoll event loop with a loopback server.
    asyncio.run(asyncio_echo())


async def asyncio_echo():
    async def handle(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"asyncio\n")
    assert await asyncio.wait_for(reader.readline(), 10) == b"asyncio\n"
    writer.close()
    srv.close()
    await srv.wait_closed()
    await asyncio.sleep(0.01)


def sqlite():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.db")
        for mode in ("DELETE", "WAL"):
            db = sqlite3.connect(path)
            db.execute(f"PRAGMA journal_mode={mode}")
            db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
            with db:
                db.executemany("INSERT INTO t (v) VALUES (?)", [(str(i),) for i in range(1000)])
            db.close()
        db = sqlite3.connect(path)
        assert db.execute("SELECT count(*), max(k) FROM t").fetchone() == (2000, 2000)
        # A second connection from another thread sees committed data.
        res = []
        t = threading.Thread(target=lambda: res.append(
            sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()[0]))
        t.start()
        t.join()
        assert res == [2000], res
        db.close()


def tempfiles():
    with tempfile.NamedTemporaryFile("w+", delete=True) as f:
        f.write("x" * 10000)
        f.flush()
        os.fsync(f.fileno())
        os.fdatasync(f.fileno())
        f.seek(0)
        assert len(f.read()) == 10000
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "f")
        with open(p, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, 4096)
        os.rename(p, p + "2")
        os.symlink(p + "2", p)
        os.chmod(p + "2", 0o600)
        assert os.stat(p).st_size == 4096 and oct(os.stat(p).st_mode & 0o777) == "0o600"
        os.mkfifo(os.path.join(d, "fifo"))
        os.utime(p, (1, 1))
    with tempfile.SpooledTemporaryFile(max_size=10) as f:
        f.write(b"more than ten bytes")
        f.seek(0)
        assert f.read() == b"more than ten bytes"
    import fcntl
    with tempfile.TemporaryFile() as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(f, fcntl.LOCK_EX)
        fcntl.flock(f, fcntl.LOCK_UN)


def signals():
    got = []
    signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    os.kill(os.getpid(), signal.SIGUSR1)
    signal.raise_signal(signal.SIGUSR1)
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
    assert got == [signal.SIGUSR1] * 3, got
    # An interval timer interrupting a sleep (setitimer, SIGALRM, EINTR retry).
    alarms = []
    signal.signal(signal.SIGALRM, lambda s, f: alarms.append(s))
    signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
    start = time.monotonic()
    while len(alarms) < 3 and time.monotonic() - start < 10:
        time.sleep(0.05)
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert len(alarms) >= 3, alarms
    signal.alarm(0)
    # Blocked, then waited for synchronously.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
    os.kill(os.getpid(), signal.SIGUSR2)
    assert signal.SIGUSR2 in signal.sigpending()
    assert signal.sigtimedwait([signal.SIGUSR2], 5).si_signo == signal.SIGUSR2
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR2])
    # set_wakeup_fd, as asyncio uses it.
    r, w = os.pipe()
    os.set_blocking(w, False)
    old = signal.set_wakeup_fd(w)
    os.kill(os.getpid(), signal.SIGUSR1)
    signal.set_wakeup_fd(old)
    assert os.read(r, 10) == bytes([signal.SIGUSR1])
    os.close(r)
    os.close(w)


def selecting():
    r, w = os.pipe()
    assert select.select([r], [], [], 0) == ([], [], [])
    os.write(w, b"x")
    assert select.select([r], [], [], 5)[0] == [r]
    p = select.poll()
    p.register(r, select.POLLIN)
    assert p.poll(5000) == [(r, select.POLLIN)]
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    assert ep.poll(5) == [(r, select.EPOLLIN)]
    ep.close()
    sel = selectors.DefaultSelector()
    sel.register(r, selectors.EVENT_READ)
    assert len(sel.select(5)) == 1
    sel.close()
    # A timeout that expires: nothing ready.
    os.read(r, 1)
    start = time.monotonic()
    assert select.select([r], [], [], 0.05) == ([], [], [])
    assert time.monotonic() - start >= 0.04
    os.close(r)
    os.close(w)


def square(x):
    return x * x


def child(q):
    q.put(os.getpid())


def processes():
    for method in ("fork", "forkserver", "spawn"):
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(2) as pool:
            assert pool.map(square, range(20)) == [x * x for x in range(20)], method
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        pid = q.get(timeout=30)
        p.join(30)
        assert p.exitcode == 0 and pid == p.pid, (method, p.exitcode)
    # Shared memory, a lock and a semaphore (POSIX semaphores in /dev/shm).
    v = multiprocessing.Value("i", 0)
    lock = multiprocessing.Lock()
    with lock:
        v.value += 1
    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(create=True, size=4096)
    shm.buf[0] = 42
    shm.close()
    shm.unlink()


SECTIONS = {
    "threads": threads,
    "subprocess": subprocesses,
    "sockets": sockets,
    "sqlite3": sqlite,
    "tempfile": tempfiles,
    "signals": signals,
    "select": selecting,
    "multiprocessing": processes,
}


def main():
    names = sys.argv[1:] or list(SECTIONS)
    for name in names:
        start = time.monotonic()
        SECTIONS[name]()
        print(f"python: {name}: ok ({time.monotonic() - start:.2f}s)", flush=True)
    print("python: OK")


if __name__ == "__main__":
    main()
