"""
smtpsink: a small receiving SMTP server on loopback, for queue tests.

It speaks enough RFC 5321 for a real client (EHLO with PIPELINING,
8BITMIME, SMTPUTF8, SIZE; optional STARTTLS; RSET, NOOP, QUIT; DATA with
dot-unstuffing) and lets a test decide each answer:

    def policy(stage, value, sink):   # stage: "connect", "mail", "rcpt", "data"
        return None                   # None: the normal answer (220/250/354/250)
        return "451 4.3.0 try later"  # or any reply line

Every accepted message is kept in `messages` (mail_from, rcpts, data bytes
with CRLF line ends, the connection number) and every command in
`commands`, so tests can count attempts and connections. Threads: one per
connection; everything shared is under `lock`.
"""
import socket
import ssl
import threading
import time
from collections import namedtuple

Message = namedtuple("Message", "mail_from rcpts data conn tls")


class SmtpSink:
    def __init__(self, host="127.0.0.1", port=0, policy=None, hostname="sink.test", certfile=None, keyfile=None,
                 pipelining=True, extensions=("8BITMIME", "SMTPUTF8", "SIZE 10485760", "ENHANCEDSTATUSCODES")):
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(self.family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.policy = policy
        self.hostname = hostname
        self.pipelining = pipelining
        self.extensions = list(extensions)
        self.tls_ctx = None
        if certfile:
            self.tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_ctx.load_cert_chain(certfile, keyfile)
        self.lock = threading.Lock()
        self.messages = []
        self.commands = []
        self.connections = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def count(self, stage):
        with self.lock:
            return sum(1 for c in self.commands if c[1] == stage)

    def wait_messages(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError("sink got %d messages in %ss, wanted %d; commands: %s"
                                 % (len(self.messages), timeout, n, self.commands[-20:]))

    def _answer(self, stage, value, default):
        with self.lock:
            self.commands.append((time.monotonic(), stage, value))
        if self.policy:
            r = self.policy(stage, value, self)
            if r:
                return r
        return default

    def _serve(self, conn, n):
        f = conn.makefile("rb")
        tls = False

        def send(line):
            conn.sendall((line + "\r\n").encode())

        try:
            first = self._answer("connect", n, "220 %s ESMTP sink" % self.hostname)
            send(first)
            if not first.startswith("220"):
                return
            mail_from, rcpts = None, []
            while True:
                raw = f.readline(4096)
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line[:4].upper()
                if verb in ("EHLO", "HELO"):
                    exts = list(self.extensions)
                    if self.pipelining:
                        exts.insert(0, "PIPELINING")
                    if self.tls_ctx and not tls:
                        exts.append("STARTTLS")
                    with self.lock:
                        self.commands.append((time.monotonic(), "ehlo", line[5:]))
                    if verb == "HELO":
                        send("250 %s" % self.hostname)
                    else:
                        lines = [self.hostname] + exts
                        for l in lines[:-1]:
                            send("250-" + l)
                        send("250 " + lines[-1])
                elif line.upper() == "STARTTLS" and self.tls_ctx and not tls:
                    send("220 2.0.0 go ahead")
                    conn = self.tls_ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rb")
                    tls = True
                    with self.lock:
                        self.commands.append((time.monotonic(), "starttls", ""))
                elif verb == "MAIL":
                    addr = line[line.find("<") + 1:line.find(">")]
                    r = self._answer("mail", addr, "250 2.1.0 ok")
                    if r.startswith("250"):
                        mail_from, rcpts = addr, []
                    send(r)
                elif verb == "RCPT":
                    addr = line[line.find("<") + 1:line.find(">")]
                    if mail_from is None:
                        send("503 5.5.1 MAIL first")
                        continue
                    r = self._answer("rcpt", addr, "250 2.1.5 ok")
                    if r.startswith("250"):
                        rcpts.append(addr)
                    send(r)
                elif verb == "DATA":
                    if not rcpts:
                        send("554 5.5.1 no valid recipients")
                        continue
                    r = self._answer("data", None, "354 go ahead")
                    if not r.startswith("354"):
                        send(r)
                        mail_from, rcpts = None, []
                        continue
                    send(r)
                    data = []
                    while True:
                        l = f.readline(100000)
                        if not l:
                            return
                        if l == b".\r\n":
                            break
                        if l.startswith(b".."):
                            l = l[1:]
                        data.append(l)
                    body = b"".join(data)
                    r = self._answer("dot", body, "250 2.0.0 queued")
                    if r.startswith("250"):
                        with self.lock:
                            self.messages.append(Message(mail_from, list(rcpts), body, n, tls))
                    send(r)
                    mail_from, rcpts = None, []
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    send("250 2.0.0 ok")
                elif verb == "NOOP":
                    send("250 2.0.0 ok")
                elif verb == "QUIT":
                    with self.lock:
                        self.commands.append((time.monotonic(), "quit", ""))
                    send("221 2.0.0 bye")
                    return
                else:
                    send("502 5.5.2 unknown command")
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
