"""
nsdserver: a real authoritative DNS server (NSD) on loopback, serving zones
signed at test time with ldns, for tests of DNSSEC validation.

Why NSD and not tests/lib/dnsserver.py: validation must be checked against
signatures a real signer made (ldns-signzone) and answers a real
authoritative server gives (DNSKEY, RRSIG, NSEC for denials), not against
our own idea of them.

    keys = make_keys(d, "signed.test")             # KSK + ZSK, ECDSA P-256
    signed = sign_zone(d, "signed.test", text, keys)
    with NsdServer(d, {"signed.test": signed}) as nsd:
        ... "127.0.0.1:%d" % nsd.port ...

NSD runs in the foreground (`nsd -d`) from a private configuration: no
chroot, no privilege drop, no remote control, its pidfile, zone list, xfrd
state and log under the given directory, listening on 127.0.0.1 only, on
one free port for UDP and TCP. start() returns once NSD answers the SOA of
every zone; stop() ends it (SIGTERM, then SIGKILL) and only it.
"""
import re
import signal
import socket
import subprocess
import time
from collections import namedtuple
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

NSD = "/usr/sbin/nsd"
ALGORITHM = "ECDSAP256SHA256"

# ksk, zsk: key base names (path without .key/.private); dnskey, ds: the
# KSK's DNSKEY and DS records in zone-file format, one line each.
Keys = namedtuple("Keys", "ksk zsk dnskey ds")


def _run(argv, cwd):
    p = subprocess.run(argv, cwd=str(cwd), capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout


def _strip_comment(line):
    return line.split(";", 1)[0].strip()


def make_keys(directory, zone):
    """A KSK and a ZSK for zone, made by ldns-keygen in directory."""
    directory = Path(directory)
    ksk = _run(["ldns-keygen", "-a", ALGORITHM, "-k", "-r", "/dev/urandom", zone], directory).strip()
    zsk = _run(["ldns-keygen", "-a", ALGORITHM, "-r", "/dev/urandom", zone], directory).strip()
    dnskey = _strip_comment((directory / (ksk + ".key")).read_text())
    ds = _strip_comment((directory / (ksk + ".ds")).read_text())
    return Keys(str(directory / ksk), str(directory / zsk), dnskey, ds)


def sign_zone(directory, zone, text, keys):
    """Writes text as zone's zone file in directory and signs it with keys
    (NSEC, inception an hour ago so no clock skew matters). Returns the path
    of the signed zone file."""
    directory = Path(directory)
    src = directory / (zone + ".zone")
    src.write_text(text)
    out = directory / (zone + ".zone.signed")
    inception = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 3600))
    _run(["ldns-signzone", "-i", inception, "-o", zone, "-f", str(out), str(src), keys.ksk, keys.zsk], directory)
    return out


def free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class NsdServer:
    """One NSD serving zones ({name: zone file path}) from directory."""

    def __init__(self, directory, zones):
        self.dir = Path(directory)
        self.zones = dict(zones)
        self.port = None
        self.proc = None
        self.conf = self.dir / "nsd.conf"
        self.log_path = self.dir / "nsd.log"

    def _write_config(self):
        d = self.dir
        lines = [
            "server:",
            "    ip-address: 127.0.0.1",
            "    port: %d" % self.port,
            "    do-ip6: no",
            "    server-count: 1",
            "    username: \"\"",
            "    chroot: \"\"",
            "    zonesdir: \"%s\"" % d,
            "    database: \"\"",
            "    pidfile: \"%s\"" % (d / "nsd.pid"),
            "    xfrdfile: \"%s\"" % (d / "xfrd.state"),
            "    xfrdir: \"%s\"" % d,
            "    zonelistfile: \"%s\"" % (d / "zone.list"),
            "    cookie-secret-file: \"%s\"" % (d / "cookiesecrets.txt"),
            "    logfile: \"%s\"" % self.log_path,
            "    verbosity: 1",
            "    hide-version: yes",
            "remote-control:",
            "    control-enable: no",
        ]
        for name, path in self.zones.items():
            lines += ["zone:", "    name: \"%s\"" % name, "    zonefile: \"%s\"" % path]
        self.conf.write_text("\n".join(lines) + "\n")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout=10):
        for attempt in range(3):
            self.port = free_udp_tcp_port()
            self._write_config()
            check = subprocess.run(["/usr/sbin/nsd-checkconf", str(self.conf)], capture_output=True, text=True)
            if check.returncode != 0:
                raise AssertionError("nsd-checkconf %s:\n%s%s" % (self.conf, check.stdout, check.stderr))
            with open(self.log_path, "ab") as err:
                self.proc = subprocess.Popen([NSD, "-d", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err)
            if self._wait_ready(timeout):
                return self
            self.stop()
            if "already in use" not in self.log():
                break
        raise AssertionError("nsd did not answer on 127.0.0.1:%s:\n%s" % (self.port, self.log()[-3000:]))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        pending = list(self.zones)
        while pending:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            q = dns.message.make_query(pending[0], dns.rdatatype.SOA)
            try:
                r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.2)
            except (OSError, dns.exception.Timeout):
                time.sleep(0.05)
                continue
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                pending.pop(0)
            else:
                time.sleep(0.05)
        return True

    def stop(self, timeout=5):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def change_record(signed_text, owner, rtype, old, new):
    """signed_text with the rdata of one record (owner, rtype, old) replaced
    by new, leaving its RRSIG as it was: an answer that fails validation."""
    pat = re.compile(r"(?m)^(%s\.?\s+\d+\s+IN\s+%s\s+)%s\s*$" % (re.escape(owner), rtype, re.escape(old)))
    out, n = pat.subn(lambda m: m.group(1) + new, signed_text)
    if n != 1:
        raise AssertionError("record %s %s %s not found once in the signed zone" % (owner, rtype, old))
    return out
