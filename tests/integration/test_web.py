"""
The web dashboard and /metrics of the real daemon, on loopback:

- every page but /login and /metrics needs a session (303 to /login); a
  wrong password, a mailbox that is not an admin and a forged login form
  are refused; failed logins are throttled per address; logout needs the
  session's CSRF token; cookies are HttpOnly and SameSite=Strict;
- every page answers 200 with well-formed SVG charts (xml.etree), showing
  what the store, `postern doctor --save` and the self-test reports hold,
  with hostile values (from HELO names and reports) escaped;
- /metrics is valid Prometheus text (tests/lib/webclient.py's parser), its
  counters move when a message arrives over SMTP, and it is refused to
  strangers when loopback access is off, but not with the bearer token;
- request bounds: oversized headers and bodies, a foreign Host header
  (DNS rebinding), a client that leaves in the middle of a login;
- headless Chromium (DevTools protocol): logging in through the form,
  every page renders its charts; a screenshot of each page is kept in
  tests/artifacts/screenshots/ (or $POSTERN_ARTIFACTS/screenshots/).
"""
import json
import os
import pwd
import re
import socket
import struct
import time
from pathlib import Path

import pytest

from dnsserver import DnsServer
from mailfile import make_message
from posterntest import ROOT, free_port
from smtpconn import SMTPConn
from webclient import Chromium, WebClient, metric, parse_prometheus, svgs

ADMIN, ADMIN_PW = "admin@example.test", "correct horse battery"
ADMIN2, ADMIN2_PW = "ops@example.test", "another good secret"
USER, USER_PW = "user@example.test", "a user password"
HOSTILE = "<script>alert(1)</script>"

ZONES = {
    "good.example": [("TXT", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all")],
    "_dmarc.good.example": [("TXT", "v=DMARC1; p=none")],
    "bad.example": [("TXT", "v=spf1 -all")],
    "_dmarc.bad.example": [("TXT", "v=DMARC1; p=none")],
    "client.example.org": [("A", "127.0.0.1")],
}


def web_daemon(postern_factory, dns=None, web=None, tls=False, start=True):
    cfg = {"web": dict({"listen": "127.0.0.1:%d" % free_port(), "admins": "%s, %s" % (ADMIN, ADMIN2)}, **(web or {}))}
    if dns is not None:
        cfg["dns"] = {"resolver": dns.address, "trust_anchor": "", "timeout": "1s"}
        cfg["spf"] = {"enabled": "yes"}
        cfg["dkim"] = {"verify": "yes"}
        cfg["dmarc"] = {"enabled": "yes"}
    pt = postern_factory(config=cfg, tls=tls, start=False)
    pt.add_user(ADMIN, ADMIN_PW)
    pt.add_user(ADMIN2, ADMIN2_PW)
    pt.add_user(USER, USER_PW)
    pt.web_port = int(cfg["web"]["listen"].rsplit(":", 1)[1])
    if start:
        pt.start()
    return pt


def client(pt):
    return WebClient("127.0.0.1", pt.web_port)


def send_hostile(pt, sender, subject):
    """A message whose HELO name is markup (it ends up in the verdicts)."""
    with SMTPConn("127.0.0.1", pt.port) as c:
        assert c.ehlo("<b>evil</b>.example").code == 250
        r = c.mail_transaction(sender, ["demo@example.test"], make_message(subject=subject, sender=sender))
        c.cmd("QUIT")
    return r


def save_doctor(pt, dns):
    p = pt.cli("doctor", "--resolver", dns.address, "--dns-timeout", "1s", "--address", "192.0.2.10", "--save")
    assert p.returncode in (0, 1), p.stderr
    assert "Saved for the dashboard" in p.stdout, p.stdout
    latest = pt.data_dir / "doctor" / "latest.json"
    report = json.loads(latest.read_text())
    assert report["checks"] and report["generated"] > time.time() - 300
    st = latest.stat()
    assert pwd.getpwuid(st.st_uid).pw_name == "postern", "the daemon must be able to read it"
    return report


def write_selftests(pt):
    """Two self-test reports as the server will store them (the JSON of
    selftest_write_json), the newer with a hostile token and text."""
    d = pt.data_dir / "selftest"
    d.mkdir(exist_ok=True)
    base = {"facts": {"client_ip": "192.0.2.1", "helo": "mail.example.org", "ptr": None, "fcrdns": False,
                      "envelope_from": "a@example.org", "spf": "pass", "spf_domain": "example.org",
                      "spf_helo": None, "dkim": [], "dmarc": "fail", "dmarc_policy": None,
                      "from_domain": "example.org", "arc": None, "lists": [], "tls_version": None,
                      "tls_cipher": None, "size": 1234}}
    old = dict(base, token="old1", received=int(time.time()) - 86400, score=10.0,
               items=[{"check": "spf", "points": 0.0, "what": "SPF pass", "fix": None}])
    new = dict(base, token="new2" + HOSTILE, received=int(time.time()) - 60, score=6.5,
               items=[{"check": "dkim", "points": 2.5, "what": "no DKIM signature " + HOSTILE,
                       "fix": "Sign with DKIM & publish the key"},
                      {"check": "ptr", "points": 1.0, "what": "no reverse DNS", "fix": "Ask your ISP"}])
    (d / "old1.json").write_text(json.dumps(old))
    (d / "new2.json").write_text(json.dumps(new))
    os.utime(d / "old1.json", (time.time() - 86400,) * 2)
    (d / "not-a-report.txt").write_text("ignored")
    for f in d.iterdir():
        os.chown(f, pt.uid, pt.gid)
    os.chown(d, pt.uid, pt.gid)


# ---- login -------------------------------------------------------------------

def test_login_required(build, postern_factory):
    pt = web_daemon(postern_factory)
    web = client(pt)
    for path in ("/", "/status", "/auth", "/doctor", "/selftest", "/no-such-page", "/status?days=3"):
        r = web.get(path)
        assert r.status == 303 and r.header("Location") == "/login", (path, r)
    # A forged form (no login cookie to match its token) is refused.
    r = WebClient("127.0.0.1", pt.web_port).post("/login", {"address": ADMIN, "password": ADMIN_PW,
                                                            "login_token": "0" * 64})
    assert r.status == 403 and "expired" in r.text, r
    assert "postern_session" not in web.cookies
    # Wrong password; a mailbox that is not an admin (right password).
    for addr, pw in ((ADMIN, "wrong"), (USER, USER_PW), ("nobody@example.test", "x")):
        r = web.login(addr, pw)
        assert r.status == 403 and "Wrong address or password" in r.text, r
        assert "postern_session" not in web.cookies
        assert web.get("/status").status == 303
    # The right password.
    r = web.login(ADMIN.upper(), ADMIN_PW)
    assert r.status == 303 and r.header("Location") == "/status", r
    cookie = [c for c in r.set_cookies() if c.startswith("postern_session=")][0]
    token = cookie.split(";")[0].split("=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{64}", token), cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    r = web.get("/status")
    assert r.status == 200 and ADMIN in r.text, r
    assert web.get("/login").status == 303  # already logged in
    assert web.get("/no-such-page").status == 404
    # Logout needs the CSRF token.
    r = web.post("/logout", {"csrf": "1" * 64})
    assert r.status == 403, r
    assert web.get("/status").status == 200
    r = web.post("/logout", {"csrf": web.csrf()})
    assert r.status == 303 and r.header("Location") == "/login", r
    assert "postern_session" not in web.cookies
    # The old token is dead even if replayed.
    web.cookies["postern_session"] = token
    assert web.get("/status").status == 303
    log = pt.log()
    assert "event=web_login address=admin@example.test client=127.0.0.1 result=ok" in log
    assert "result=failed" in log and ADMIN_PW not in log and USER_PW not in log


def test_failed_logins_throttled_per_address(build, postern_factory):
    pt = web_daemon(postern_factory)
    web = client(pt)
    for _ in range(4):
        assert web.login(ADMIN, "wrong").status == 403
    # Now even the right password waits.
    r = web.login(ADMIN, ADMIN_PW)
    assert r.status == 429 and "Too many failed logins" in r.text, r
    assert "postern_session" not in web.cookies
    # Another address is not held up.
    other = client(pt)
    assert other.login(ADMIN2, ADMIN2_PW).status == 303
    # The first delay is one second.
    time.sleep(1.2)
    assert web.login(ADMIN, ADMIN_PW).status == 303
    samples = parse_prometheus(web.get("/metrics").text)
    assert metric(samples, "postern_web_logins_total", result="throttled") == 1
    assert metric(samples, "postern_web_logins_total", result="failed") == 4
    assert metric(samples, "postern_web_logins_total", result="ok") == 2


# ---- pages ----------------------------------------------------------------------

@pytest.fixture
def dns():
    with DnsServer(ZONES) as server:
        yield server


def populated(postern_factory, dns):
    """A daemon with verdicts (over SMTP), a saved doctor report and two
    self-test reports."""
    pt = web_daemon(postern_factory, dns=dns, start=False)
    save_doctor(pt, dns)
    write_selftests(pt)
    pt.start()
    assert send_hostile(pt, "a@good.example", "one").code == 250
    assert send_hostile(pt, "b@good.example", "two").code == 250
    assert send_hostile(pt, "c@bad.example", "three").code == 250  # SPF fail, recorded (p=none)
    time.sleep(0.5)  # verdicts are stored in batches, within 200 ms
    return pt


def test_every_page_with_valid_svg(build, postern_factory, dns):
    pt = populated(postern_factory, dns)
    web = client(pt)
    assert web.login(ADMIN, ADMIN_PW).status == 303
    pages = {}
    for path in ("/status", "/auth", "/doctor", "/selftest", "/queue", "/deliverability", "/reports", "/greylist"):
        r = web.get(path)
        assert r.status == 200, (path, r)
        assert r.header("Content-Type") == "text/html; charset=utf-8"
        assert "default-src 'none'" in r.header("Content-Security-Policy")
        assert r.header("Cache-Control") == "no-store"
        charts = svgs(r.text)
        assert charts, "%s has no chart" % path
        for svg in charts:
            assert svg.find("{http://www.w3.org/2000/svg}title") is not None
        assert "<script" not in r.text.lower(), path
        # No external asset: nothing is loaded from anywhere.
        assert not re.search(r'\b(src|href)="(https?:)?//', r.text), path
        for href in re.findall(r'href="([^"]*)"', r.text):
            assert href.startswith("/"), href
        pages[path] = r.text

    s = pages["/status"]
    assert "postern 0." in s and "mx.example.test" in s and "example.test, catch.test" in s
    assert "127.0.0.1:%d" % pt.port in s and "[::1]:%d" % pt.port in s and "127.0.0.1:%d" % pt.web_port in s
    assert re.search(r'id="delivered">3<', s), s
    assert re.search(r'id="received">3<', s)

    a = pages["/auth"]
    day = time.strftime("%m-%d", time.gmtime())
    assert re.search(r"<tr><td>%s</td><td>3</td><td>2</td><td>0</td><td>2</td><td>1</td></tr>" % day, a), a
    assert "&lt;b&gt;evil&lt;/b&gt;.example" in a and "<b>evil" not in a
    assert "c@bad.example" in a
    # The per-day bars: DMARC passes for today (2) under their own title.
    assert re.search(r"<title>%s: pass 2</title>" % day, a)
    assert web.get("/auth?days=7").status == 200
    assert web.get("/auth?days=100000").status == 200  # out of range: the default

    d = pages["/doctor"]
    report = json.loads((pt.data_dir / "doctor" / "latest.json").read_text())
    for c in report["checks"]:
        assert ">%s</td>" % c["check"] in d, c["check"]
    assert "Checks by verdict" in d

    t = pages["/selftest"]
    assert "2 reports" in t
    assert t.index("6.5/10") < t.index("10.0/10"), "newest first"
    assert HOSTILE not in t and "&lt;script&gt;alert(1)&lt;/script&gt;" in t
    assert "Sign with DKIM &amp; publish the key" in t
    assert "not-a-report" not in t


def test_pages_without_data(build, postern_factory):
    pt = web_daemon(postern_factory)
    web = client(pt)
    assert web.login(ADMIN, ADMIN_PW).status == 303
    assert "postern doctor --save" in web.get("/doctor").text
    assert "No self-test yet" in web.get("/selftest").text
    r = web.get("/auth")
    assert r.status == 200 and "No message in this period" in r.text
    assert svgs(r.text)


# ---- metrics -----------------------------------------------------------------------

def test_metrics_move_with_smtp(build, postern_factory):
    pt = web_daemon(postern_factory)
    web = client(pt)
    r = web.get("/metrics")  # loopback: no login needed
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    before = parse_prometheus(r.text)
    assert metric(before, "postern_build_info", version="0.1.0") == 1
    assert metric(before, "postern_uptime_seconds") >= 0

    msg = make_message(subject="metrics")
    assert pt.deliver("demo@example.test", msg).code == 250
    with pt.session() as c:
        c.cmd("MAIL FROM:<x@example.org>")
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        assert c.cmd("RCPT TO:<x@elsewhere.example>").code == 554
        c.cmd("QUIT")
    after = parse_prometheus(web.get("/metrics").text)

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("postern_smtp_connections_total", result="accepted") == 2
    assert delta("postern_smtp_messages_total", outcome="delivered") == 1
    assert delta("postern_smtp_recipients_total", result="accepted") == 1
    assert delta("postern_smtp_recipients_total", result="unknown_user") == 1
    assert delta("postern_smtp_recipients_total", result="relay_denied") == 1
    # Counted as stored: LF line endings.
    assert delta("postern_smtp_data_bytes_total") == len(msg) - msg.count(b"\r\n")
    assert delta("postern_smtp_end_of_data_seconds_count") == 1
    assert delta("postern_smtp_end_of_data_seconds_sum") > 0
    assert metric(after, "postern_smtp_sessions") in (0, 1)  # the last session may still be closing


def test_metrics_results_of_checks(build, postern_factory, dns):
    pt = web_daemon(postern_factory, dns=dns)
    assert send_hostile(pt, "a@good.example", "one").code == 250
    assert send_hostile(pt, "c@bad.example", "two").code == 250
    m = parse_prometheus(client(pt).get("/metrics").text)
    assert metric(m, "postern_spf_results_total", result="pass") == 1
    assert metric(m, "postern_spf_results_total", result="fail") == 1
    assert metric(m, "postern_dkim_results_total", result="none") == 2
    assert metric(m, "postern_dmarc_results_total", result="pass") == 1
    assert metric(m, "postern_dmarc_results_total", result="fail") == 1


def test_metrics_token(build, postern_factory):
    token = "k" * 12 + "9" * 12
    pt = web_daemon(postern_factory, web={"metrics_loopback": "no", "metrics_token": token})
    web = client(pt)
    r = web.get("/metrics")
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Bearer realm="postern"', r
    assert web.get("/metrics", headers={"Authorization": "Bearer " + token[:-1] + "x"}).status == 401
    assert web.get("/metrics", headers={"Authorization": "Bearer " + token[:-1]}).status == 401
    r = web.get("/metrics", headers={"Authorization": "Bearer " + token})
    assert r.status == 200 and parse_prometheus(r.text)
    # A logged-in administrator may read it too.
    assert web.login(ADMIN, ADMIN_PW).status == 303
    assert web.get("/metrics").status == 200
    assert token not in pt.log()


# ---- bounds --------------------------------------------------------------------------

def raw_http(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def test_request_bounds(build, postern_factory):
    pt = web_daemon(postern_factory)
    web = client(pt)
    # A foreign Host header (DNS rebinding) is refused, even for /metrics.
    for host in ("evil.example", "evil.example:8025", "127.0.0.1.evil.example"):
        assert web.get("/metrics", headers={"Host": host}).status == 421, host
    for host in ("localhost:1", "mx.example.test", "[::1]:9", "127.0.0.1"):
        assert web.get("/metrics", headers={"Host": host}).status == 200, host
    # Headers beyond 8 KiB, a body beyond 8 KiB.
    r = raw_http(pt.web_port, b"GET /login HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.1 4\d\d ", r) or r == b"", r[:100]
    r = web.post("/login", {"address": "a" * 20000})
    assert r.status == 413, r
    # Other methods.
    assert web.request("PUT", "/status", body="x").status in (405, 501)
    # A client that leaves in the middle of a login: the answer finds no
    # one, and the server goes on.
    token = web.login_form()
    body = "address=%s&password=wrong&login_token=%s" % (ADMIN, token)
    s = socket.create_connection(("127.0.0.1", pt.web_port))
    s.sendall(("POST /login HTTP/1.1\r\nHost: localhost\r\nCookie: postern_login=%s\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
               % (token, len(body), body)).encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST
    time.sleep(0.5)
    assert web.login(ADMIN, ADMIN_PW).status == 303
    assert web.get("/status").status == 200


def test_https_secure_cookie(build, postern_factory):
    import ssl
    pt = web_daemon(postern_factory, web={"tls": "yes"}, tls=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test certificate is self-signed
    web = WebClient("127.0.0.1", pt.web_port, tls_context=ctx)
    r = web.login(ADMIN, ADMIN_PW)
    assert r.status == 303, r
    assert any("Secure" in c for c in r.set_cookies() if c.startswith("postern_session="))
    assert web.get("/status").status == 200
    # Plain HTTP on the TLS port gets nothing useful.
    assert b"200 OK" not in raw_http(pt.web_port, b"GET /metrics HTTP/1.0\r\n\r\n", timeout=5)


def test_web_config_errors(build, postern_factory):
    pt = postern_factory(start=False, tls=False)
    pt.write_config({"web": {"listen": "localhost:80", "admins": "not-an-address", "tls": "yes",
                             "metrics_token": "short"}})
    p = pt.cli("config", "check")
    assert p.returncode == 1
    err = p.stderr
    assert "listen: 'localhost:80' is not ADDRESS:PORT" in err
    assert "admins: 'not-an-address' is not a mailbox address" in err
    assert "tls = yes needs a certificate" in err
    assert "metrics_token must be 16 or more printable characters" in err
    assert re.search(r"postern\.conf:\d+: ", err)


# ---- Chromium ---------------------------------------------------------------------------

def artifacts_dir():
    base = os.environ.get("POSTERN_ARTIFACTS")
    d = Path(base) / "screenshots" if base else ROOT / "tests" / "artifacts" / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_dashboard_in_chromium(build, postern_factory, dns, workdir):
    pt = populated(postern_factory, dns)
    base = "http://127.0.0.1:%d" % pt.web_port
    shots = artifacts_dir()
    browser = Chromium(workdir)
    try:
        # Login is required: the browser lands on the form.
        browser.navigate(base + "/auth")
        assert browser.evaluate("location.pathname") == "/login"
        assert browser.evaluate("document.querySelectorAll('svg').length") == 0
        browser.screenshot(shots / ("%s-login.png" % build))
        # Log in as a person would: type into the form and submit it.
        browser.submit_and_wait(
            "document.getElementById('address').value = %s;"
            "document.getElementById('password').value = %s;"
            "document.querySelector('form.login').submit();" % (json.dumps(ADMIN), json.dumps(ADMIN_PW)))
        assert browser.evaluate("location.pathname") == "/status"
        for path in ("/status", "/auth", "/doctor", "/selftest", "/queue", "/deliverability", "/reports",
                     "/greylist"):
            browser.navigate(base + path)
            assert browser.evaluate("location.pathname") == path
            n = browser.evaluate("document.querySelectorAll('svg.chart').length")
            assert n > 0, path
            # The charts were laid out: drawn with a real size.
            w = browser.evaluate("document.querySelector('svg.chart').getBoundingClientRect().width")
            assert w > 200, (path, w)
            shapes = browser.evaluate("document.querySelectorAll('svg.chart rect, svg.chart polyline, "
                                      "svg.chart circle').length")
            assert shapes > 0, path
            png = browser.screenshot(shots / ("%s-%s.png" % (build, path.strip("/"))))
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000, (path, len(png))
        # Logging out through the button ends the session.
        browser.submit_and_wait("document.querySelector('form[action=\"/logout\"]').submit();")
        assert browser.evaluate("location.pathname") == "/login"
        browser.navigate(base + "/status")
        assert browser.evaluate("location.pathname") == "/login"
    finally:
        browser.close()
