"""
posterntest: run the real postern daemon (and Dovecot) for integration tests.

Every server a test needs is started here on a free loopback port, from a
private directory under /tmp, and stopped afterwards. The daemon is run as
root exactly as in production, so it binds its ports and drops to the system
user `postern`; its data directory therefore belongs to that user, and every
parent of it is world-traversable.

Builds: `build` is the normal build, `build-asan` the AddressSanitizer +
UndefinedBehaviorSanitizer build. A daemon from the ASan build that printed a
sanitizer report fails the test when it is stopped.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from mailfile import StoredMessage
from smtpconn import SMTPConn

ROOT = Path(__file__).resolve().parents[2]
HOSTNAME = "mx.example.test"
DOMAINS = ("example.test", "catch.test")
SYSTEM_USER = "postern"

# The mailboxes and aliases every daemon starts with (see template_data_dir).
DEFAULT_USERS = ("demo@example.test", "alice@example.test", "bob@example.test", "carol@example.test",
                 "catchall@example.test", "u1@example.test", "u2@example.test", "u3@example.test",
                 "u4@example.test", "u5@example.test", "u6@example.test")
DEFAULT_ALIASES = (("list@example.test", ("alice@example.test", "bob@example.test")),
                   ("@catch.test", ("catchall@example.test",)))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def available_builds():
    """Build directories to test, from POSTERN_BUILDS (default "build
    build-asan") filtered by the existence of BUILD/postern. If none exists,
    ["build"], so that tests fail for want of a binary instead of vanishing."""
    wanted = os.environ.get("POSTERN_BUILDS", "build build-asan").split()
    have = [b for b in wanted if (ROOT / b / "postern").exists()]
    return have or wanted[:1]


_sections = {}


def config_sections(build):
    """The configuration sections BUILD/postern knows (from `config example`),
    so the harness sets optional keys only where they exist."""
    if build not in _sections:
        found = set()
        binary = ROOT / build / "postern"
        if binary.exists():
            p = subprocess.run([str(binary), "config", "example"], capture_output=True, text=True,
                               errors="replace", timeout=60, env=build_env(build))
            found = set(re.findall(r"(?m)^\[(\w+)\]", p.stdout))
        _sections[build] = found
    return _sections[build]


def is_asan(build):
    return "asan" in os.path.basename(build)


def build_env(build):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if is_asan(build):
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    return env


def sanitizer_report(text):
    """The first sanitizer report in text, or None."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            start = text.rfind("\n", 0, max(0, i - 200)) + 1
            return text[start:start + 4000]
    return None


def free_port():
    """A TCP port free on both 127.0.0.1 and ::1 right now."""
    for _ in range(200):
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::1", 0))
        port = s6.getsockname()[1]
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s4.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s4.close()
            s6.close()
        return port
    raise RuntimeError("no free port")


def ensure_system_user():
    """The unprivileged user the daemon drops to. Returns (uid, gid)."""
    try:
        pw = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True)
        pw = pwd.getpwnam(SYSTEM_USER)
    return pw.pw_uid, pw.pw_gid


def make_workdir(prefix="postern-"):
    """A private directory under /tmp that the system user can traverse."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), uid, gid, follow_symlinks=False)


def make_cert(directory):
    """A self-signed certificate for HOSTNAME, readable by the system user.
    Returns (certificate path, key path)."""
    directory = Path(directory)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + HOSTNAME,
                    "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cert.chmod(0o644)
    key.chmod(0o644)
    return cert, key


def render_ini(sections):
    out = []
    for name, keys in sections.items():
        if keys is None:
            continue
        out.append("[%s]" % name)
        for k, v in keys.items():
            if v is not None:
                out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


def json_strings(value):
    """Every string anywhere inside a parsed JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from json_strings(k)
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def stored_hash(pt, address):
    """The password column of address's row in DATA_DIR/state.db, read without
    touching the file (immutable: no -wal/-shm owned by root left behind)."""
    db = sqlite3.connect("file:%s?immutable=1" % (pt.data_dir / "state.db"), uri=True)
    try:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cols = [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]
            pw = [c for c in cols if "pass" in c.lower() or "hash" in c.lower()]
            if not pw:
                continue
            for row in db.execute("SELECT * FROM %s" % table):
                if address in row:
                    return row[cols.index(pw[0])]
    finally:
        db.close()
    raise AssertionError("no password column found for %s" % address)


class Postern:
    """One daemon: its directory, configuration, data and process."""

    def __init__(self, build, workdir, cert=None, config=None, port=None, data_template=None):
        self.build = build
        self.binary = ROOT / build / "postern"
        self.workdir = Path(workdir)
        self.uid, self.gid = ensure_system_user()
        self.data_dir = self.workdir / "data"
        if data_template is not None:
            shutil.copytree(data_template, self.data_dir, symlinks=True)
        else:
            self.data_dir.mkdir()
        chown_tree(self.data_dir, self.uid, self.gid)
        self.mail_dir = self.data_dir / "mail"
        self.config_path = self.workdir / "postern.conf"
        self.log_path = self.workdir / "postern.log"
        self.port = port or free_port()
        self.cert = cert
        self.proc = None
        self.finished = False
        self.logf = None
        self.sanitizer_reports = []
        self.overrides = {}
        self.write_config(config or {})

    # -- configuration -------------------------------------------------------
    def base_config(self):
        cfg = {
            "server": {
                "hostname": HOSTNAME,
                "user": SYSTEM_USER,
                "data_dir": str(self.data_dir),
                "domains": ", ".join(DOMAINS),
                "shutdown_timeout": "5s",
                "workers": "2",
            },
            "smtp": {
                "listen": "127.0.0.1:%d, [::1]:%d" % (self.port, self.port),
                "max_message_size": "1M",
                "command_timeout": "30s",
                "data_timeout": "30s",
            },
            "tls": None,
        }
        # SMTP tests are hermetic: no SPF, DKIM or DMARC lookups against the
        # system resolver (those have their own tests with a private DNS
        # server on loopback).
        known = config_sections(self.build)
        # Nothing a test does may reach a DNS server off this machine (the
        # outbound queue looks up MX records): a dead loopback port unless
        # the test gives its own resolver.
        if "dns" in known:
            cfg["dns"] = {"resolver": "127.0.0.1:9", "timeout": "1s"}
        if "spf" in known:
            cfg["spf"] = {"enabled": "no"}
        if "dkim" in known:
            cfg["dkim"] = {"verify": "no"}
        if "dmarc" in known:
            cfg["dmarc"] = {"enabled": "no"}
        if "arc" in known:
            cfg["arc"] = {"verify": "no"}
        # The inbound policy is neutral: no DNS checks, no graylisting, no
        # rate limits (tests/integration/test_policy*.py turn them on).
        if "policy" in known:
            cfg["policy"] = {"enabled": "no", "greet_delay": "0s", "max_unknown_recipients": "100000"}
        if "greylist" in known:
            cfg["greylist"] = {"mode": "off"}
        if "ratelimit" in known:
            cfg["ratelimit"] = {k: "0" for k in ("connections_per_minute", "messages_per_hour",
                                                 "recipients_per_hour", "unknown_recipients_per_hour",
                                                 "auth_messages_per_hour", "auth_recipients_per_hour")}
        # The dashboard listens on a fixed port by default: off unless a
        # test asks for it (tests/integration/test_web.py).
        if "web" in known:
            cfg["web"] = {"listen": ""}
        if self.cert:
            cfg["tls"] = {"certificate": str(self.cert[0]), "key": str(self.cert[1])}
        return cfg

    def write_config(self, overrides=None, raw=None):
        """Writes the config: the base merged with overrides ({section: {key:
        value}}; a value None removes the key, a section None removes the
        section). raw replaces the whole text."""
        if overrides is not None:
            self.overrides = overrides
        if raw is not None:
            text = raw
        else:
            cfg = self.base_config()
            for sec, keys in self.overrides.items():
                if keys is None:
                    cfg[sec] = None
                    continue
                if cfg.get(sec) is None:
                    cfg[sec] = {}
                cfg[sec].update(keys)
            text = render_ini(cfg)
        self.config_path.write_text(text)
        self.config_path.chmod(0o644)
        return text

    def config_value(self, section, key):
        sec = self.base_config().get(section) or {}
        sec = dict(sec, **(self.overrides.get(section) or {}))
        return sec.get(key)

    # -- the command line ----------------------------------------------------
    def cli(self, *args, input=None, timeout=60):
        """Runs `postern -c CONFIG ARGS...`; returns the CompletedProcess
        (text). A sanitizer report in its output fails the test."""
        return self.run_binary(["-c", str(self.config_path)] + list(args), input=input, timeout=timeout)

    def run_binary(self, argv, input=None, timeout=60):
        p = subprocess.run([str(self.binary)] + [str(a) for a in argv], input=input, capture_output=True,
                           text=True, errors="replace", timeout=timeout, env=build_env(self.build),
                           cwd=str(self.workdir))
        rep = sanitizer_report(p.stderr)
        if rep:
            raise AssertionError("sanitizer report from %s %s:\n%s" % (self.binary, argv, rep))
        return p

    def add_user(self, address, password=None):
        if password is None:
            p = self.cli("user", "add", address, "--no-password")
        else:
            p = self.cli("user", "add", address, "--password-stdin", input=password + "\n")
        assert p.returncode == 0, "user add %s: rc=%d\n%s%s" % (address, p.returncode, p.stdout, p.stderr)
        return p

    def add_alias(self, source, *targets):
        p = self.cli("alias", "add", source, *targets)
        assert p.returncode == 0, "alias add %s: rc=%d\n%s%s" % (source, p.returncode, p.stdout, p.stderr)
        return p

    # -- the daemon ----------------------------------------------------------
    def start(self, wait=True, timeout=20):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not self.binary.exists():
            raise AssertionError("%s does not exist: run make (and make asan)" % self.binary)
        self.logf = open(self.log_path, "ab")
        self.finished = False
        self.proc = subprocess.Popen([str(self.binary), "serve", "-c", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=build_env(self.build), cwd=str(self.workdir))
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=20):
        """Waits until every listener answers with the greeting, and the
        probe session has been closed by the server (so it no longer counts
        against connection limits)."""
        deadline = time.monotonic() + timeout
        for host in ("127.0.0.1", "::1"):
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("postern exited with %s before accepting connections:\n%s"
                                         % (self.proc.returncode, self.log_tail()))
                try:
                    c = SMTPConn(host, self.port, timeout=5)
                except (ConnectionRefusedError, OSError):
                    if time.monotonic() > deadline:
                        raise AssertionError("postern does not accept on [%s]:%d after %ss:\n%s"
                                             % (host, self.port, timeout, self.log_tail()))
                    time.sleep(0.05)
                    continue
                try:
                    assert c.greeting == "220 %s ESMTP postern" % HOSTNAME, c.greeting
                    c.cmd("QUIT")
                    c.wait_closed(5)
                finally:
                    c.close()
                break
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=20, expect_rc=0):
        """SIGTERM, wait, and check the exit status and the sanitizers.
        Returns the exit status."""
        if self.proc is None:
            return None
        self.finished = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                raise AssertionError("postern did not exit within %ss of SIGTERM:\n%s" % (timeout, self.log_tail()))
        rc = self.proc.returncode
        self._close_log()
        self.check_sanitizers()
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("postern exited with %s, expected %s:\n%s" % (rc, expect_rc, self.log_tail()))
        return rc

    def kill(self):
        """SIGKILL: a crash. No sanitizer check (the process had no say)."""
        self.finished = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self):
        if self.logf:
            self.logf.close()
            self.logf = None

    def check_sanitizers(self):
        rep = sanitizer_report(self.log())
        if rep:
            raise AssertionError("sanitizer report from %s:\n%s" % (self.binary, rep))

    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    # -- connections ---------------------------------------------------------
    def connect(self, host="127.0.0.1", timeout=10.0, greeting=True):
        return SMTPConn(host, self.port, timeout=timeout, greeting=greeting)

    def session(self, host="127.0.0.1", ehlo=True):
        """A connection that got the greeting and, by default, said EHLO."""
        c = self.connect(host)
        assert c.greeting == "220 %s ESMTP postern" % HOSTNAME, c.greeting
        if ehlo:
            r = c.ehlo()
            assert r.code == 250, r
        return c

    def deliver(self, rcpts, message, sender="sender@example.org", host="127.0.0.1"):
        """A complete transaction on a new connection; returns the final reply."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with self.session(host) as c:
            r = c.mail_transaction(sender, rcpts, message)
            c.cmd("QUIT")
            return r

    # -- mailboxes -----------------------------------------------------------
    def maildir(self, address):
        local, domain = address.lower().rsplit("@", 1)
        return self.mail_dir / domain / local

    def message_files(self, address, sub="new"):
        d = self.maildir(address) / sub
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.is_file())

    def messages(self, address):
        """The messages in ADDRESS's new/, parsed (oldest name first)."""
        return [StoredMessage(p, p.read_bytes()) for p in self.message_files(address)]

    def all_message_files(self, sub="new"):
        """Every file in any mailbox's new/ (or sub/)."""
        if not self.mail_dir.is_dir():
            return []
        return sorted(p for p in self.mail_dir.glob("*/*/%s/*" % sub) if p.is_file())


class Dovecot:
    """A private Dovecot IMAP server over postern's Maildirs."""

    def __init__(self, workdir, mail_dir, users, port=None):
        """users: {address: password}; a password that starts with "{" already
        names its scheme (e.g. "{CRYPT}$y$..."), any other is {PLAIN}."""
        self.workdir = Path(workdir) / "dovecot"
        self.workdir.mkdir()
        self.workdir.chmod(0o755)
        self.port = port or free_port()
        self.mail_dir = Path(mail_dir)
        self.base_dir = self.workdir / "run"
        self.conf = self.workdir / "dovecot.conf"
        self.passwd = self.workdir / "passwd"
        self.log_path = self.workdir / "dovecot.log"
        self.proc = None
        self.passwd.write_text("".join("%s:%s%s::::::\n" % (u, "" if p.startswith("{") else "{PLAIN}", p)
                                       for u, p in users.items()))
        self.passwd.chmod(0o644)
        self.conf.write_text("""\
protocols = imap
listen = 127.0.0.1
base_dir = {base}
state_dir = {state}
log_path = {log}
info_log_path = {log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{mail}/%d/%n
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={mail}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""".format(base=self.base_dir, state=self.workdir / "state", log=self.log_path, mail=self.mail_dir,
           passwd=self.passwd, user=SYSTEM_USER, port=self.port))
        (self.workdir / "state").mkdir()

    def start(self, timeout=20):
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=open(self.workdir / "stdout.log", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("dovecot exited with %s:\n%s\n%s" % (
                    self.proc.returncode, (self.workdir / "stdout.log").read_text(errors="replace"), self.log()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                banner = s.recv(1024)
                s.close()
                if banner.startswith(b"* OK"):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("dovecot not ready on port %d:\n%s" % (self.port, self.log()))
            time.sleep(0.1)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
