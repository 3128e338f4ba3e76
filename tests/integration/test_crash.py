"""
Durability and load. A 250 after end of data is a promise (docs/smtp.md: the
message is fsync'd in new/ first): kill -9 the daemon while several clients
send, restart it, and every message that got 250 must be in new/ exactly once
and complete. Then Postfix's smtp-source pushes many messages through
concurrent sessions and every one must arrive.
"""
import random
import re
import subprocess
import threading
import time

import pytest

from mailfile import StoredMessage, to_lf
from smtpconn import SMTPConn, is_queued

RCPT = "demo@example.test"


def message_for(n):
    """Message n: unique marker, deterministic content, 1 to 30 kB."""
    rnd = random.Random(n)
    lines = []
    for _ in range(rnd.randint(10, 400)):
        lines.append("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz .,") for _ in range(rnd.randint(0, 76))))
    body = "\r\n".join(lines) + "\r\n"
    return ("From: <sender@example.org>\r\nTo: <%s>\r\nSubject: crash test %d\r\nX-Marker: %d\r\n"
            "Message-ID: <crash-%d@client.example.org>\r\n\r\n%s" % (RCPT, n, n, n, body)).encode()


class Senders:
    """Threads that send numbered messages over and over, reconnecting when
    the server goes away, and record which numbers got 250."""

    def __init__(self, port, nthreads=4):
        self.port = port
        self.lock = threading.Lock()
        self.next = 0
        self.accepted = set()
        self.broken = 0  # transactions cut by the server going away
        self.stop = threading.Event()
        self.unexpected = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(nthreads)]

    def start(self):
        for t in self.threads:
            t.start()

    def take(self):
        with self.lock:
            self.next += 1
            return self.next

    def run(self):
        while not self.stop.is_set():
            try:
                c = SMTPConn("127.0.0.1", self.port, timeout=10)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                if c.greeting.code != 220 or c.ehlo().code != 250:
                    continue
                while not self.stop.is_set():
                    n = self.take()
                    r = c.mail_transaction("sender@example.org", [RCPT], message_for(n))
                    if is_queued(r):
                        with self.lock:
                            self.accepted.add(n)
                    else:
                        with self.lock:
                            self.unexpected.append((n, r))
                        break
            except AssertionError as e:
                # a 421 on shutdown or a truncated reply: the session is over
                with self.lock:
                    self.broken += 1
                    if "421" not in str(e):
                        self.unexpected.append(("assert", str(e)[:200]))
            except (OSError, Exception):  # noqa: BLE001 - reset, closed, timeout
                with self.lock:
                    self.broken += 1
            finally:
                c.close()

    def wait_accepted(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.accepted) >= n:
                    return
            time.sleep(0.01)
        raise AssertionError("only %d messages accepted after %ss (wanted %d)" % (len(self.accepted), timeout, n))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


@pytest.mark.normal_build_only
def test_kill9_loses_no_accepted_message(postern):
    senders = Senders(postern.port)
    senders.start()
    try:
        for target in (40, 90, 140):
            senders.wait_accepted(target, 60)
            postern.kill()
            time.sleep(0.2)
            postern.start()
        senders.wait_accepted(190, 60)
    finally:
        senders.finish()
    postern.stop()

    assert senders.broken > 0, "the kills cut no transaction: the test proved nothing"
    seen = {}
    for p in postern.all_message_files():
        data = p.read_bytes()
        m = re.search(rb"\nX-Marker: (\d+)\n", data)
        assert m, "file in new/ without marker (partial?): %s %r" % (p, data[:300])
        n = int(m.group(1))
        assert n not in seen, "message %d delivered twice: %s and %s" % (n, seen[n], p)
        seen[n] = p
        stored = StoredMessage(p, data)
        assert stored.return_path == "sender@example.org"
        assert stored.rest == to_lf(message_for(n)), "message %d in %s is not what was sent (partial?)" % (n, p)
    missing = sorted(senders.accepted - set(seen))
    assert not missing, "messages that got 250 but are not in new/: %s" % missing[:20]
    assert not [u for u in senders.unexpected if u[0] != "assert"], senders.unexpected[:5]


def smtp_source(port, sessions, messages, length):
    return subprocess.run(["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(length),
                           "-f", "sender@example.org", "-t", RCPT, "127.0.0.1:%d" % port],
                          capture_output=True, text=True, errors="replace", timeout=240)


def test_smtp_source_load(postern, build):
    n = 500 if "asan" not in build else 200
    t0 = time.monotonic()
    p = smtp_source(postern.port, 10, n, 10240)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    files = postern.all_message_files()
    assert len(files) == n, "%d messages sent, %d delivered" % (n, len(files))
    for f in files[:20] + files[-20:]:
        m = StoredMessage(f, f.read_bytes())
        assert m.return_path == "sender@example.org"
        assert len(m.rest) > 10240
    print("%d messages in %.1fs" % (n, took))

