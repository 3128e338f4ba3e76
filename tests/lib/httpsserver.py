"""
httpsserver: a real HTTPS server on loopback for tests (MTA-STS policies),
and a test certificate authority to sign its certificates.

    ca = TestCA(directory)
    cert, key = ca.issue(directory, ["mta-sts.example.test"])
    with HttpsServer("127.0.0.7", 443, cert, key, routes) as srv:
        ...  # clients trust ca.cert_path
    srv.requests  -> [(host header, path)] seen

routes maps a path to (status, body bytes, extra headers dict), or to a
callable(host, path) returning the same; anything else is 404.
"""
import http.server
import random
import socket
import ssl
import subprocess
import threading
from pathlib import Path


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class TestCA:
    __test__ = False  # not a pytest test class
    def __init__(self, directory, name="postern test CA"):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        self.cert_path = d / "ca.pem"
        self.key_path = d / "ca.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-days", "2",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", str(self.key_path), "-out", str(self.cert_path))
        self.cert_path.chmod(0o644)
        self.serial = 1

    def issue(self, directory, names, stem=None):
        """A leaf certificate for names (DNS SANs), signed by this CA.
        Returns (certificate path, key path), both world-readable."""
        d = Path(directory)
        stem = stem or names[0]
        key, csr, cert, ext = (d / (stem + ".key"), d / (stem + ".csr"), d / (stem + ".pem"), d / (stem + ".ext"))
        ext.write_text("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n"
                       "extendedKeyUsage=serverAuth\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + names[0], "-keyout", str(key),
                 "-out", str(csr))
        self.serial += 1
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert_path), "-CAkey", str(self.key_path),
                 "-set_serial", str(self.serial), "-days", "2", "-extfile", str(ext), "-out", str(cert))
        cert.chmod(0o644)
        key.chmod(0o644)
        return cert, key


class HttpsServer:
    def __init__(self, host, port, cert, key, routes):
        self.host, self.port = host, port
        self.routes = routes
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append((self.headers.get("Host"), self.path))
                route = owner.routes.get(self.path)
                if callable(route):
                    route = route(self.headers.get("Host"), self.path)
                status, body, headers = route if route else (404, b"not found\n", {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def free_loopback_443():
    """A loopback address whose port 443 is free (tests run as root), for
    an HTTPS server at the name's real port (MTA-STS fetches use 443)."""
    for _ in range(50):
        addr = "127.0.%d.%d" % (random.randint(1, 254), random.randint(2, 254))
        s = socket.socket()
        try:
            s.bind((addr, 443))
            return addr
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free loopback address with port 443")
