"""
webclient: what the dashboard tests use to talk to postern's web server.

  WebClient      HTTP/1.1 with a cookie jar, no automatic redirects (tests
                 assert the 303s), login/logout through the real forms.
  parse_prometheus(text)
                 a small, strict reader of the Prometheus text format 0.0.4:
                 every sample belongs to a family declared by # TYPE, names
                 and labels are well-formed, values are numbers, histogram
                 buckets are cumulative and +Inf equals _count. Returns
                 {(name, frozenset(labels.items())): value}.
  svgs(html)     every <svg>...</svg> of a page, each parsed with
                 xml.etree (an error if one is not well-formed XML).
  Chromium       headless Chromium (Debian `chromium`) driven through the
                 DevTools protocol over a websocket (python3-websocket):
                 navigate, evaluate, fill and submit forms, screenshots.
                 Every request it makes off loopback goes to a dead proxy
                 port on loopback, and host names never resolve: no
                 traffic leaves the machine.
"""
import base64
import http.client
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from http.cookies import SimpleCookie


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_cookies(self):
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.text[:200])


class WebClient:
    def __init__(self, host, port, tls_context=None):
        self.host, self.port = host, port
        self.tls_context = tls_context
        self.cookies = {}

    def request(self, method, path, body=None, headers=None, cookies=True):
        if self.tls_context is not None:
            c = http.client.HTTPSConnection(self.host, self.port, timeout=20, context=self.tls_context)
        else:
            c = http.client.HTTPConnection(self.host, self.port, timeout=20)
        h = dict(headers or {})
        if cookies and self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if isinstance(body, dict):
            from urllib.parse import urlencode
            body = urlencode(body)
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()
        for sc in resp.set_cookies():
            jar = SimpleCookie()
            jar.load(sc)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, fields, **kw):
        return self.request("POST", path, body=fields, **kw)

    def login_form(self):
        """GETs /login; returns the form's login_token."""
        r = self.get("/login")
        assert r.status == 200, r
        m = re.search(r'name="login_token" value="([0-9a-f]{64})"', r.text)
        assert m, r.text
        return m.group(1)

    def login(self, address, password):
        """Logs in through the form; returns the POST's response."""
        token = self.login_form()
        return self.post("/login", {"address": address, "password": password, "login_token": token})

    def csrf(self, page="/status"):
        r = self.get(page)
        assert r.status == 200, r
        m = re.search(r'name="csrf" value="([0-9a-f]{64})"', r.text)
        assert m, r.text
        return m.group(1)


# ---- Prometheus text format 0.0.4 -----------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (\S+)( -?\d+)?$" % _NAME)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')


def _number(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    v = float(s)  # raises on garbage
    assert not math.isnan(v) or s == "NaN", s
    return v


def parse_prometheus(text):
    assert text.endswith("\n"), "the exposition must end with a line feed"
    types, helps, samples = {}, {}, {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line, "empty line %d" % n
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % _NAME, line)
            assert m, "line %d: bad comment: %r" % (n, line)
            kind, name, rest = m.groups()
            if kind == "TYPE":
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert name not in types, "line %d: second TYPE for %s" % (n, name)
                types[name] = rest
            else:
                helps[name] = rest
            continue
        m = _SAMPLE.match(line)
        assert m, "line %d: bad sample: %r" % (n, line)
        name, _, labeltext, value = m.group(1), m.group(2), m.group(3), m.group(4)
        labels = {}
        if labeltext:
            pos = 0
            while pos < len(labeltext):
                lm = _LABEL.match(labeltext, pos)
                assert lm, "line %d: bad labels: %r" % (n, labeltext)
                labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                pos = lm.end()
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in types:
                family = name[:-len(suffix)]
        assert family in types, "line %d: %s has no # TYPE before it" % (n, name)
        if types[family] == "counter":
            assert _number(value) >= 0, line
        key = (name, frozenset(labels.items()))
        assert key not in samples, "line %d: duplicate sample %s" % (n, line)
        samples[key] = _number(value)
    # Histograms: cumulative buckets, +Inf == count.
    for family, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == family + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append((_number(le), v))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "%s buckets are not cumulative: %s" % (family, buckets)
            assert buckets[-1][0] == float("inf"), "%s has no +Inf bucket" % family
            assert samples[(family + "_count", rest)] == buckets[-1][1], family
            assert (family + "_sum", rest) in samples, family
    return samples


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


# ---- pages ------------------------------------------------------------------

def svgs(html):
    """Each inline <svg> element of the page, parsed."""
    out = []
    for m in re.finditer(r"<svg\b.*?</svg>", html, re.S):
        el = ET.fromstring(m.group(0))  # raises if not well-formed
        assert el.tag == "{http://www.w3.org/2000/svg}svg", el.tag
        out.append(el)
    return out


# ---- Chromium over the DevTools protocol ------------------------------------

class Chromium:
    """One headless Chromium with its own profile; .page is the first tab."""

    def __init__(self, workdir, width=1280, height=1024):
        import websocket  # python3-websocket
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=str(workdir))
        exe = shutil.which("chromium")
        assert exe, "install Debian's chromium (tools/install-deps.sh)"
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=%d,%d" % (width, height),
             "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir=" + self.profile,
             "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
             "--disable-domain-reliability", "--no-pings", "--disable-breakpad", "--metrics-recording-only",
             "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
             # Nothing leaves loopback: other hosts go to a dead proxy port
             # here, and no name is ever resolved.
             "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("chromium did not start:\n%s" % self.log_text())
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        deadline = time.monotonic() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/json/list")
                targets = json.loads(c.getresponse().read())
                c.close()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("no page target in chromium")
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def log_text(self):
        try:
            return open(os.path.join(self.profile, "chromium.log"), "rb").read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    del self.events[i]
                    return e
            if time.monotonic() > deadline:
                raise AssertionError("no %s within %ss" % (method, timeout))
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))

    def navigate(self, url):
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def submit_and_wait(self, expression):
        """Runs expression (which submits a form) and waits for the next page."""
        self.events.clear()
        self.evaluate(expression)
        self.wait_event("Page.loadEventFired")

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
