#!/bin/sh
# `make demo`: writes a demo configuration under ./demo (domain example.test,
# mailbox demo@example.test, loopback port 2525, a self-signed certificate)
# and runs the server in the foreground.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
demo="$top/demo"
port=${POSTERN_DEMO_PORT:-2525}
user=postern
[ "$(id -u)" = 0 ] || user=$(id -un)

mkdir -p "$demo/data"
chmod 755 "$demo"
if [ ! -f "$demo/cert.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=mx.example.test" \
		-keyout "$demo/key.pem" -out "$demo/cert.pem" 2>/dev/null
	chmod 600 "$demo/key.pem"
fi
[ "$(id -u)" = 0 ] && chown -R "$user" "$demo/data"
cat > "$demo/postern.conf" <<CONF
# The demo configuration written by \`make demo\`.
[server]
hostname = mx.example.test
user = $user
data_dir = $demo/data
domains = example.test

[smtp]
listen = 127.0.0.1:$port, [::1]:$port

[tls]
certificate = $demo/cert.pem
key = $demo/key.pem
CONF
bin="$top/build/postern"
"$bin" -c "$demo/postern.conf" user list | grep -qx demo@example.test ||
	"$bin" -c "$demo/postern.conf" user add demo@example.test --no-password
cat <<MSG

postern demo: domain example.test, mailbox demo@example.test, SMTP on 127.0.0.1:$port and [::1]:$port.

In another terminal, send it a message (STARTTLS with the self-signed certificate):
  swaks --server 127.0.0.1:$port --tls --to demo@example.test --from you@example.org
It lands as a file in:
  $demo/data/mail/example.test/demo/new/
Configuration: $demo/postern.conf   Stop: Ctrl-C.

MSG
exec "$bin" -c "$demo/postern.conf" serve
