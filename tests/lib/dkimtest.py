"""
dkimtest: what the DKIM, ARC, submission and forwarding tests share when
they check postern against dkimpy over a loopback DNS server.

  record_strings(out)   the (name, [strings]) of the TXT record that
                        `postern dkim keygen` printed as a zone-file line
  dnsfunc_for(server)   a dkimpy dnsfunc asking only that loopback server
"""
import re

import dns.resolver


def record_strings(keygen_stdout):
    line = keygen_stdout.decode() if isinstance(keygen_stdout, bytes) else keygen_stdout
    line = line.strip()
    m = re.fullmatch(r'(\S+)\. IN TXT \( ((?:"[^"]*" ?)+)\)', line)
    assert m, line
    strings = re.findall(r'"([^"]*)"', m.group(2))
    assert all(len(x) <= 255 for x in strings), strings
    return m.group(1), strings


def dnsfunc_for(server):
    """A dkimpy dnsfunc asking only the loopback server."""
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = server.port
    r.lifetime = 5

    def dnsfunc(name, timeout=5):
        try:
            ans = r.resolve(name.decode() if isinstance(name, bytes) else name, "TXT")
        except Exception:
            return None
        return b"".join(b"".join(rr.strings) for rr in ans)
    return dnsfunc
