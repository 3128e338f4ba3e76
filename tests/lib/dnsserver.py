"""
dnsserver: a real DNS server on loopback, for tests that need DNS.

It answers over UDP and TCP on one free port, from zone data given as Python
structures, the way an authoritative server for the whole tree ("." is its
zone) would: AA set, NOERROR with the records, NODATA (NOERROR, no answer,
the SOA in the authority section) for a name that exists without the type
asked or that has names below it (an empty non-terminal), NXDOMAIN (with the
SOA) otherwise. It follows nothing outside its data: a CNAME is answered as
an authoritative server answers it, the CNAME followed by what the data holds
for its target (further CNAMEs, then the records of the type asked), and the
resolver asking must resolve a target the data does not answer itself.
Negative answers carry a small negative TTL (the SOA's TTL and MINIMUM).

Queries may come with RD=1 (libunbound in forwarding mode sends them so);
then RA is set in the answer too, as a resolver answering from its local data
would. EDNS is honoured: the answer carries an OPT record, and an answer
larger than the client's UDP size (512 without EDNS) is sent over UDP with
TC=1 and empty sections, so the client retries over TCP, which is never
truncated.

Zone data: a dict from a name (any case, trailing dot optional) to a list of
entries. An entry is a record:

    ("A", "192.0.2.1")              ("AAAA", "2001:db8::1")
    ("MX", (10, "mx.example.com"))  ("PTR", "host.example.com")
    ("CNAME", "target.example.com")
    ("TXT", "one string")           ("TXT", ["several", " strings"])
    ("TXT", b"raw bytes")           ("TXT", [])   (no strings at all)
    ("SPF", ...)                    type 99, same values as TXT

with an optional third element, the TTL; or a failure mode, for every query
of the name ("TIMEOUT") or only for some types (("TIMEOUT", "TXT"),
("SERVFAIL", ["A", "AAAA"])):

    TIMEOUT   never answers (over UDP or TCP)
    SERVFAIL  rcode SERVFAIL, empty sections
    REFUSED   rcode REFUSED, empty sections
    TRUNCATE  over UDP, TC=1 and empty sections; over TCP, the full answer
    GARBAGE   the query's id followed by bytes that are no DNS message
    WRONG_ID  the right answer under another message id
    SHORT     the right answer cut short in the middle (header intact)

A failure mode applies to the name asked, not to a CNAME target reached
through it: there the chain just stops, as if that target lived on another
server (the resolver then asks for the target by itself).

Use:

    with DnsServer(zones) as dns:
        run_something(resolver="127.0.0.1:%d" % dns.port)
        assert dns.count("example.com", "TXT") == 1
        dns.set_zones(other_zones)      # swap the data without a restart

`queries` lists every query seen (name in lower case without the final dot,
type, transport, RD flag, EDNS version or -1), in order of arrival.
Everything here is for loopback tests; the server trusts nothing it receives
and never crashes on it (a malformed query gets FORMERR or no answer).
"""
import random
import selectors
import socket
import struct
import threading
from collections import namedtuple

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.ANY.SPF import SPF
from dns.rdtypes.ANY.TXT import TXT

FAIL_MODES = ("TIMEOUT", "SERVFAIL", "REFUSED", "TRUNCATE", "GARBAGE", "WRONG_ID", "SHORT")
IN = dns.rdataclass.IN
MAX_CHAIN = 16          # CNAME steps followed inside the data before giving up
OUR_PAYLOAD = 1232      # EDNS UDP size we advertise
TCP_IDLE = 30.0         # seconds an idle TCP connection is kept

Query = namedtuple("Query", "name qtype transport rd edns")


def _name(text):
    if isinstance(text, dns.name.Name):
        return text
    return dns.name.from_text(text, origin=dns.name.root)


def _key(name):
    """The lookup key of a name: lower case, no final dot."""
    return _name(name).to_text(omit_final_dot=True).lower()


def _text_bytes(s):
    if isinstance(s, bytes):
        return s
    try:
        # YAML "\xEF" escapes mean bytes; keep them as single bytes when possible.
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def _txt_strings(value):
    if isinstance(value, (str, bytes)):
        value = [value]
    out = []
    for s in value:
        b = _text_bytes(s)
        if len(b) > 255:
            raise ValueError("TXT character-string longer than 255 bytes: split it (%r...)" % b[:40])
        out.append(b)
    return tuple(out)


def make_rdata(rtype, value):
    """A dnspython rdata from a record tuple's type and value."""
    t = dns.rdatatype.from_text(rtype)
    if t == dns.rdatatype.TXT:
        return TXT(IN, t, _txt_strings(value))
    if t == dns.rdatatype.SPF:
        return SPF(IN, t, _txt_strings(value))
    if t == dns.rdatatype.MX:
        if isinstance(value, str):
            pref, exch = value.split()
        else:
            pref, exch = value
        return MX(IN, t, int(pref), _name(exch))
    if t == dns.rdatatype.PTR:
        return PTR(IN, t, _name(value))
    if t == dns.rdatatype.CNAME:
        return CNAME(IN, t, _name(value))
    return dns.rdata.from_text(IN, t, value)


class _Node:
    def __init__(self, name):
        self.name = _name(name)       # the case the data gave
        self.rdatasets = {}           # rdatatype -> Rdataset
        self.fails = []               # (mode, set of rdatatypes or None)

    def fail_for(self, qtype):
        for mode, types in self.fails:
            if types is None or qtype in types:
                return mode
        return None


class Zones:
    """Zone data compiled for lookups; immutable once built."""

    def __init__(self, data, ttl=60, negative_ttl=1):
        self.nodes = {}
        self.ents = set()
        for owner, entries in (data or {}).items():
            key = _key(owner)
            node = self.nodes.get(key) or _Node(owner)
            self.nodes[key] = node
            if isinstance(entries, (str, tuple)):
                entries = [entries]
            for e in entries:
                self._add(node, e, ttl)
            labels = key.split(".")
            for i in range(1, len(labels)):
                self.ents.add(".".join(labels[i:]))
        self.negative_ttl = negative_ttl
        soa = SOA(IN, dns.rdatatype.SOA, _name("ns.dnsserver.test"), _name("hostmaster.dnsserver.test"),
                  1, 3600, 600, 86400, negative_ttl)
        self.soa = dns.rrset.from_rdata(dns.name.root, negative_ttl, soa)

    @staticmethod
    def _add(node, e, ttl):
        if isinstance(e, str):
            e = (e,)
        e = tuple(e)
        if e[0] in FAIL_MODES:
            types = None
            if len(e) > 1 and e[1] is not None:
                ts = e[1].split() if isinstance(e[1], str) else e[1]
                types = {dns.rdatatype.from_text(t) for t in ts}
            node.fails.append((e[0], types))
            return
        if len(e) not in (2, 3):
            raise ValueError("bad record %r at %s" % (e, node.name))
        rd = make_rdata(e[0], e[1])
        rs = node.rdatasets.get(rd.rdtype)
        if rs is None:
            rs = node.rdatasets[rd.rdtype] = dns.rdataset.Rdataset(IN, rd.rdtype)
            rs.update_ttl(e[2] if len(e) == 3 else ttl)
        n = len(rs)
        rs.add(rd)
        if len(rs) == n:
            raise ValueError("duplicate record %r at %s: DNS cannot serve it twice" % (e, node.name))

    def node(self, name):
        return self.nodes.get(_key(name))

    def exists(self, name):
        k = _key(name)
        return k in self.nodes or k in self.ents

    def resolve(self, qname, qtype, ignore_fail=False):
        """The answer to a query: (failure mode or None, rcode, answer rrsets,
        authority rrsets). ignore_fail: the answer as if qname had no
        failure mode."""
        node = self.node(qname)
        if node is not None and not ignore_fail:
            mode = node.fail_for(qtype)
            if mode is not None:
                return mode, None, [], []
        answer = []
        name = qname
        seen = {_key(qname)}
        while True:
            node = self.node(name)
            if node is None:
                rcode = dns.rcode.NOERROR if self.exists(name) else dns.rcode.NXDOMAIN
                return None, rcode, answer, [self.soa]
            if answer and node.fail_for(qtype):
                # The chain leads to a name we will not answer for: stop here.
                return None, dns.rcode.NOERROR, answer, []
            rs = node.rdatasets.get(qtype)
            if rs is not None:
                answer.append(self._rrset(name, rs))
                return None, dns.rcode.NOERROR, answer, []
            cn = node.rdatasets.get(dns.rdatatype.CNAME)
            if cn is None or qtype == dns.rdatatype.CNAME:
                return None, dns.rcode.NOERROR, answer, [self.soa]
            answer.append(self._rrset(name, cn))
            target = cn[0].target
            if _key(target) in seen or len(seen) > MAX_CHAIN:
                return None, dns.rcode.NOERROR, answer, []
            seen.add(_key(target))
            name = target

    @staticmethod
    def _rrset(name, rdataset):
        rrset = dns.rrset.RRset(_name(name), rdataset.rdclass, rdataset.rdtype)
        rrset.update(rdataset)
        rrset.update_ttl(rdataset.ttl)
        return rrset


class DnsServer:
    """A DNS server on host:port (port 0: a free one, the same for UDP and
    TCP). Start it with start() or `with`; stop() closes every socket."""

    def __init__(self, zones=None, host="127.0.0.1", port=0, ttl=60, negative_ttl=1):
        self.host = host
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._zones = Zones(zones, ttl, negative_ttl)
        self._lock = threading.Lock()
        self._queries = []
        self._want_port = port
        self.port = None
        self._udp = self._tcp = None
        self._threads = []
        self._conns = set()
        self._stopping = False
        self._wake_r = self._wake_w = None
        self.errors = []      # exceptions raised while answering (a bug here)

    # --- data and records

    def set_zones(self, zones):
        """Replace the zone data; queries arriving from now on see the new data."""
        z = Zones(zones, self.ttl, self.negative_ttl)
        with self._lock:
            self._zones = z

    @property
    def zones(self):
        return self._zones

    @property
    def queries(self):
        with self._lock:
            return list(self._queries)

    def clear_queries(self):
        with self._lock:
            self._queries.clear()

    def count(self, name=None, qtype=None, transport=None):
        """How many queries matched (name without case or final dot, type text)."""
        k = _key(name) if name is not None else None
        return sum(1 for q in self.queries
                   if (k is None or q.name == k) and (qtype is None or q.qtype == qtype)
                   and (transport is None or q.transport == transport))

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port) if ":" not in self.host else "[%s]:%d" % (self.host, self.port)

    # --- life cycle

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(100):
            udp = socket.socket(fam, socket.SOCK_DGRAM)
            udp.bind((self.host, self._want_port))
            port = udp.getsockname()[1]
            tcp = socket.socket(fam, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self._want_port:
                    raise
                continue
            break
        else:
            raise RuntimeError("no free port for UDP and TCP together")
        tcp.listen(64)
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        t = threading.Thread(target=self._loop, name="dnsserver-%d" % port, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        if self._udp is None:
            return
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        for t in self._threads:
            t.join(5)
        self._threads = []
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for s in (self._udp, self._tcp, self._wake_r, self._wake_w):
            s.close()
        self._udp = self._tcp = self._wake_r = self._wake_w = None

    def _loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._tcp, selectors.EVENT_READ, "tcp")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping:
                for key, _ in sel.select(1.0):
                    if key.data == "udp":
                        self._on_udp()
                    elif key.data == "tcp":
                        self._on_accept()
        finally:
            sel.close()

    def _on_udp(self):
        for _ in range(64):
            try:
                wire, peer = self._udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            out = self._handle(wire, "udp")
            if out is not None:
                try:
                    self._udp.sendto(out, peer)
                except OSError:
                    pass

    def _on_accept(self):
        try:
            conn, _ = self._tcp.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return
        conn.setblocking(True)
        conn.settimeout(TCP_IDLE)
        with self._lock:
            self._conns.add(conn)
        threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()

    def _serve_tcp(self, conn):
        try:
            while not self._stopping:
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                (n,) = struct.unpack("!H", head)
                wire = _recv_exact(conn, n)
                if wire is None:
                    return
                out = self._handle(wire, "tcp")
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except (OSError, socket.timeout):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    # --- answering

    def _handle(self, wire, transport):
        try:
            return self._answer(wire, transport)
        except Exception as e:   # a bug in this server: remember it, answer SERVFAIL
            self.errors.append(e)
            if len(wire) >= 2:
                return wire[:2] + struct.pack("!HHHHH", 0x8002, 0, 0, 0, 0)
            return None

    def _answer(self, wire, transport):
        if len(wire) < 12:
            return None
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            # FORMERR with the id and nothing else.
            (qid,) = struct.unpack("!H", wire[:2])
            return struct.pack("!HHHHHH", qid, 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)
        if q.flags & dns.flags.QR:
            return None
        r = dns.message.make_response(q, recursion_available=bool(q.flags & dns.flags.RD),
                                      our_payload=OUR_PAYLOAD)
        if q.opcode() != dns.opcode.QUERY:
            r.set_rcode(dns.rcode.NOTIMP)
            return r.to_wire()
        if len(q.question) != 1:
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire()
        qrr = q.question[0]
        with self._lock:
            self._queries.append(Query(_key(qrr.name), dns.rdatatype.to_text(qrr.rdtype), transport,
                                       bool(q.flags & dns.flags.RD), q.edns))
            zones = self._zones
        if q.edns > 0:
            r.set_rcode(dns.rcode.BADVERS)
            return r.to_wire()
        if qrr.rdclass != IN:
            r.set_rcode(dns.rcode.REFUSED)
            return r.to_wire()
        mode, rcode, answer, authority = zones.resolve(qrr.name, qrr.rdtype)
        if mode == "TIMEOUT":
            return None
        if mode in ("SERVFAIL", "REFUSED"):
            r.set_rcode(dns.rcode.from_text(mode))
            return r.to_wire()
        r.flags |= dns.flags.AA
        if mode == "TRUNCATE" and transport == "udp":
            r.flags |= dns.flags.TC
            return r.to_wire()
        if mode == "GARBAGE":
            rnd = random.Random(wire)
            return wire[:2] + bytes(rnd.randrange(256) for _ in range(37))
        if mode is None or mode in ("TRUNCATE", "WRONG_ID", "SHORT"):
            # mode None: rcode, answer and authority are the real answer;
            # for the three others resolve() gave nothing: compute it now.
            if mode is not None:
                _, rcode, answer, authority = zones.resolve(qrr.name, qrr.rdtype, ignore_fail=True)
            r.set_rcode(rcode)
            r.answer = answer
            r.authority = authority
        out = self._wire(q, r, transport)
        if mode == "WRONG_ID":
            (qid,) = struct.unpack("!H", out[:2])
            out = struct.pack("!H", (qid + 0x5a5a) & 0xFFFF) + out[2:]
        elif mode == "SHORT":
            body = len(out) - 12
            out = out[:12 + max(1, body // 2)]
        return out

    @staticmethod
    def _wire(q, r, transport):
        if transport == "tcp":
            return r.to_wire(max_size=65535)
        limit = max(512, q.payload) if q.edns >= 0 else 512
        try:
            return r.to_wire(max_size=limit)
        except dns.exception.TooBig:
            r.answer = []
            r.authority = []
            r.additional = []
            r.flags |= dns.flags.TC
            return r.to_wire(max_size=limit)


def _recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
