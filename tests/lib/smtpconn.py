"""
smtpconn: a raw SMTP client for protocol tests.

smtplib hides what we want to see (exact reply lines, replies that should not
be there, the moment the server closes), so protocol and abuse tests talk to
the daemon through this small class instead. It sends bytes exactly as given
and parses replies exactly as received; every read has a timeout, so a server
that hangs fails the test instead of hanging the suite.

A Reply compares equal to a string holding its lines joined with "\n", so a
test reads `assert c.cmd("NOOP") == "250 2.0.0 Ok"` and a failure shows both.
"""
import re
import socket
import ssl
import time

CRLF = b"\r\n"


class Reply:
    """One SMTP reply: its code and its raw lines (code and separator kept)."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])

    @property
    def text(self):
        """The whole reply as one string, lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def last(self):
        """The text of the last line, without the code."""
        return self.lines[-1][4:]

    def __eq__(self, other):
        if isinstance(other, str):
            return self.text == other
        if isinstance(other, Reply):
            return self.lines == other.lines
        return NotImplemented

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "Reply(%r)" % self.text

    def __str__(self):
        return self.text


QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as \S+$")


def is_queued(reply):
    """Whether reply is the end-of-data success reply of docs/smtp.md."""
    return isinstance(reply, Reply) and len(reply.lines) == 1 and bool(QUEUED_RE.match(reply.lines[0]))


class ServerClosed(Exception):
    """The server closed the connection while a reply was expected."""


class SMTPConn:
    def __init__(self, host="127.0.0.1", port=25, timeout=10.0, greeting=True, source=None):
        """source: the local address to connect from (any 127.x.y.z works
        on Linux loopback), for tests that need several client addresses."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.tls = False
        self.greeting = self.reply() if greeting else None

    # -- low level -----------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        """Reads more bytes into buf; returns False at end of stream."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(65536)
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def readline(self):
        """One line up to and including CRLF, as str (UTF-8, lossless for ASCII)."""
        while CRLF not in self.buf:
            if not self._fill():
                raise ServerClosed("connection closed; pending bytes: %r" % self.buf)
        line, self.buf = self.buf.split(CRLF, 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Reads one (possibly multi-line) reply."""
        lines = []
        while True:
            line = self.readline()
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise AssertionError("malformed reply line %r after %r" % (line, lines))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                if any(l[:3] != line[:3] for l in lines):
                    raise AssertionError("reply lines with different codes: %r" % lines)
                return Reply(lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        """Sends one command line (CRLF added) and returns its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + CRLF)
        return self.reply()

    def pending(self, wait=0.5):
        """Whatever the server sends within `wait` seconds without being asked.
        Returns the bytes (b"" when the server stayed silent); at end of stream
        returns what was buffered (the caller checks closed())."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if not self._fill(timeout=left):
                    break
            except (socket.timeout, ssl.SSLWantReadError):
                break
        data, self.buf = self.buf, b""
        return data

    def wait_closed(self, timeout=5.0):
        """Waits for the server to close. Returns (closed, bytes received meanwhile)."""
        deadline = time.monotonic() + timeout
        got = b""
        while time.monotonic() < deadline:
            try:
                if not self._fill(timeout=max(0.01, deadline - time.monotonic())):
                    got += self.buf
                    self.buf = b""
                    return True, got
            except (socket.timeout, ssl.SSLWantReadError):
                break
            except (ConnectionResetError, BrokenPipeError):
                got += self.buf
                self.buf = b""
                return True, got
            except ssl.SSLError:
                # an unclean TLS shutdown is still a close
                got += self.buf
                self.buf = b""
                return True, got
        got += self.buf
        self.buf = b""
        return False, got

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- SMTP helpers --------------------------------------------------------
    def ehlo(self, name="client.example.org"):
        return self.cmd("EHLO " + name)

    def starttls_wrap(self, ctx=None, server_hostname="mx.example.test"):
        """Does the TLS handshake on the current socket (after a 220 to
        STARTTLS). Bytes the server sent in clear after its 220 are an error."""
        if self.buf:
            raise AssertionError("server sent %r in clear after 220 to STARTTLS" % self.buf)
        if ctx is None:
            ctx = client_tls_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.tls = True
        return self.sock

    def starttls(self, ctx=None):
        r = self.cmd("STARTTLS")
        if r != "220 2.0.0 Ready to start TLS":
            raise AssertionError("STARTTLS refused: %r" % r)
        self.starttls_wrap(ctx)
        return r

    def mail_transaction(self, sender, rcpts, message, data_cmd="DATA"):
        """MAIL, RCPT..., DATA, message (CRLF text, dot-stuffed here), end.
        Asserts the MAIL/RCPT/354 replies of the contract and returns the
        reply to the end of data."""
        r = self.cmd("MAIL FROM:<%s>" % sender)
        assert r == "250 2.1.0 Ok", r
        for rcpt in rcpts:
            r = self.cmd("RCPT TO:<%s>" % rcpt)
            assert r == "250 2.1.5 Ok", (rcpt, r)
        r = self.cmd(data_cmd)
        assert r == "354 End data with <CR><LF>.<CR><LF>", r
        self.send(dot_stuff(message) + b".\r\n")
        return self.reply()


def dot_stuff(message):
    """CRLF message -> DATA payload without the final ".\r\n": every line that
    begins with "." gets another; a final CRLF is added if missing."""
    if isinstance(message, str):
        message = message.encode("utf-8")
    if not message.endswith(CRLF):
        message += CRLF
    out = []
    for line in message.split(CRLF)[:-1]:
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + CRLF)
    return b"".join(out)


def client_tls_context(cafile=None, min_version=None, max_version=None, legacy=False):
    """A client context. With cafile the server certificate is verified
    against it (host name not checked: tests connect to 127.0.0.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if legacy:
        # Let this side offer TLS 1.0/1.1 so that the *server* is what decides.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx
