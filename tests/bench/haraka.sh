#!/usr/bin/env bash
# haraka.sh - Haraka (Node.js SMTP server, from the npm registry) set up to do moat's job,
# as a peer for the benchmarks. See shared notes "bench-peers.md" for why each piece is here.
#
#   haraka.sh install DIR
#       npm-installs the pinned Haraka and plugins into DIR (e.g. build/bench/haraka);
#       does nothing when they are already there at these versions. Installs Debian's
#       nodejs + npm first when node or npm is missing.
#   haraka.sh config DIR SITE LISTEN_PORT SINK_PORT DNS_PORT LOCAL_DOMAIN NODELAY(0|1) [CERT KEY]
#       writes Haraka's config directory SITE (config/, plugins/, preload.js) and prints the
#       command line that starts Haraka with it, in the foreground, logging to stderr:
#           node -r SITE/preload.js DIR/node_modules/Haraka/bin/haraka -c SITE
#       With CERT and KEY (PEM files), Haraka's tls plugin offers STARTTLS with them: TLS 1.2
#       and 1.3, the TLS 1.3 cipher suite TLS_AES_128_GCM_SHA256 only (as the bench's other
#       TLS servers), no client certificate asked for.
#
# The job, as moat does it: recipients only in LOCAL_DOMAIN; the sender domain must resolve
# (MX, else A); SPF fail -> 550, temperror -> 451; DKIM: signatures present, none passing,
# one failing -> 550 5.7.20; accepted mail forwarded to 127.0.0.1:SINK_PORT. One process
# (nodes=0), log level warn, no DNSBL, STARTTLS only with CERT and KEY; every DNS query
# goes to 127.0.0.1:DNS_PORT.
set -euo pipefail

# Pinned: Haraka 3.3.4 as measured in the notes, and the plugin releases its 3.3.4
# package.json asks for (~1.3.x). Optional dependencies are omitted (they build native
# modules we don't use), so the plugins we need are named here.
PKGS=(Haraka@3.3.4 haraka-plugin-spf@1.3.0 haraka-plugin-dkim@1.3.1
	haraka-plugin-mail_from.is_resolvable@1.3.0)

die() { echo "haraka.sh: $*" >&2; exit 2; }
usage() {
	die "usage: $0 install DIR | config DIR SITE LISTEN_PORT SINK_PORT DNS_PORT LOCAL_DOMAIN NODELAY(0|1) [CERT KEY]"
}

# true when every pinned package is in DIR/node_modules at its pinned version
installed() {
	# shellcheck disable=SC2016  # JavaScript, not shell
	node -e '
		const [dir, ...pkgs] = process.argv.slice(1)
		const ok = pkgs.every((p) => {
			const at = p.lastIndexOf("@")
			try { return require(`${dir}/node_modules/${p.slice(0, at)}/package.json`).version === p.slice(at + 1) }
			catch { return false }
		})
		process.exit(ok ? 0 : 1)' "$1" "${PKGS[@]}"
}

cmd_install() {
	[ $# -eq 1 ] || usage
	local dir
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		# A clean Debian 12 has neither; its nodejs is 18.x, on which Haraka 3.3.4 runs
		# although its package.json asks for node >= 20 (npm only warns).
		echo "haraka.sh: installing nodejs npm (apt-get)" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
	fi
	mkdir -p "$1"
	dir=$(cd "$1" && pwd)
	if installed "$dir"; then
		echo "haraka.sh: ${PKGS[*]} already in $dir" >&2
		return 0
	fi
	# A package.json of its own, so npm installs into DIR and not into a parent project.
	[ -f "$dir/package.json" ] || echo '{ "name": "haraka-bench", "private": true }' >"$dir/package.json"
	# --loglevel=error: node-gyp's dependencies warn about engines; nothing here builds.
	(cd "$dir" && npm install --omit=optional --save-exact --no-audit --no-fund --loglevel=error "${PKGS[@]}" >&2)
	installed "$dir" || die "npm install in $dir did not leave ${PKGS[*]}"
	echo "haraka.sh: installed ${PKGS[*]} in $dir" >&2
}

cmd_config() {
	[ $# -eq 7 ] || [ $# -eq 9 ] || usage
	local dir site listen sink dnsport domain nodelay cert=${8:-} key=${9:-} p
	dir=$(cd "$1" 2>/dev/null && pwd) || die "no install directory $1"
	site=$2 listen=$3 sink=$4 dnsport=$5 domain=$6 nodelay=$7
	for p in $cert $key; do
		[ -r "$p" ] || die "cannot read $p"
	done
	for p in "$listen" "$sink" "$dnsport"; do
		# shellcheck disable=SC2015  # die if any test fails
		[[ $p =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "bad port '$p'"
	done
	[[ $nodelay =~ ^[01]$ ]] || die "NODELAY must be 0 or 1"
	[[ $domain =~ ^[A-Za-z0-9.-]+$ ]] || die "bad domain '$domain'"
	[ -f "$dir/node_modules/Haraka/bin/haraka" ] || die "Haraka is not installed in $dir (run: $0 install $dir)"

	# SITE is rewritten whole, so that no stale file (a tls.ini, an old plugin) changes the
	# job; to be safe it is only cleared when an earlier run of this script made it.
	mkdir -p "$site"
	site=$(cd "$site" && pwd)
	if [ -f "$site/.haraka-bench" ]; then
		rm -rf "${site:?}/config" "${site:?}/plugins" "$site/preload.js"
	elif [ -n "$(ls -A "$site")" ]; then
		die "$site is not empty and was not made by $0"
	fi
	touch "$site/.haraka-bench"
	mkdir -p "$site/config" "$site/plugins"
	local c=$site/config

	# nodes=0: one process, no cluster master + worker (Haraka's default).
	cat >"$c/smtp.ini" <<EOF
listen=127.0.0.1:$listen
nodes=0
EOF
	# connection.ini has no built-in defaults (Haraka crashes at the greeting without it):
	# take the stock one, as `haraka -i` would.
	cp "$dir/node_modules/Haraka/config/connection.ini" "$c/"
	printf '[main]\nlevel=warn\ntimestamps=false\nformat=default\n' >"$c/log.ini"
	echo haraka.bench.test >"$c/me"
	echo "$domain" >"$c/host_list"

	# Order matters within a hook: bench_public before spf's helo/mail hooks (connect_init
	# runs first anyway), bench_dkim_reject after dkim at data_post. No dns-list; tls only
	# with a certificate.
	{
		if [ -n "$cert" ]; then echo tls; fi
		cat <<'EOF'
bench_public
mail_from.is_resolvable
spf
rcpt_to.in_host_list
dkim
bench_dkim_reject
queue/smtp_forward
EOF
	} >"$c/plugins"

	if [ -n "$cert" ]; then
		# Haraka reads key and cert from its config directory. The TLS 1.2 suite is there
		# because Node wants one in the list; the bench's clients speak TLS 1.3.
		install -m 600 "$key" "$c/tls_key.pem"
		install -m 644 "$cert" "$c/tls_cert.pem"
		cat >"$c/tls.ini" <<'EOF'
[main]
key=tls_key.pem
cert=tls_cert.pem
ciphers=TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256
minVersion=TLSv1.2
honorCipherOrder=true
requestCert=false
rejectUnauthorized=false
EOF
	fi

	# The bench's sender domain has its MX host on 127.0.0.1, which this plugin calls bogus
	# by default (it would refuse every message); keep the other bogus addresses.
	# allow_mx_ip: accept a domain with no MX but an A/AAAA (the implicit MX), as moat does.
	# A domain with neither is refused (deny); DNS failure gives DENYSOFT (451).
	cat >"$c/mail_from.is_resolvable.ini" <<'EOF'
[main]
allow_mx_ip=true
re_bogus_ip=^(?:0\.0\.0\.0|255\.255\.255\.255)$
[reject]
no_mx=deny
EOF

	# SPF at MAIL FROM as moat does it: fail -> 550, temperror -> 451; HELO results only recorded.
	cat >"$c/spf.ini" <<'EOF'
[defer]
mfrom_temperror=true
[deny]
mfrom_fail=true
EOF

	cat >"$c/dkim.ini" <<'EOF'
[sign]
enabled=false
[verify]
enabled=true
EOF

	cat >"$c/smtp_forward.ini" <<EOF
host=127.0.0.1
port=$sink
enable_tls=false
enable_outbound=false
EOF

	# Haraka marks 127.0.0.0/8 clients private, and its spf plugin then skips SPF entirely:
	# clear the flag for the comparison to be fair (moat checks loopback clients too).
	cat >"$site/plugins/bench_public.js" <<'EOF'
'use strict'
// benchmark only: treat loopback clients as public, so that spf runs for them
exports.hook_connect_init = function (next, connection) {
    connection.remote.is_private = false
    next()
}
EOF

	# haraka-plugin-dkim only records results (one per signature). Refuse like moat:
	# signatures present, none passing, one failing (fail/invalid); DNS tempfails alone pass.
	cat >"$site/plugins/bench_dkim_reject.js" <<'EOF'
'use strict'
// benchmark only: refuse the message when its DKIM signatures failed and none passed
exports.hook_data_post = function (next, connection) {
    const results = (connection.transaction?.notes.dkim_results || []).map((r) => r.result)
    if (!results.length || results.includes('pass') || results.every((r) => r === 'tempfail')) return next()
    next(DENY, '5.7.20 No passing DKIM signature found')
}
EOF

	# node -r: Node ignores a port in resolv.conf, so point every resolver at the bench's DNS
	# server: the ones made later (haraka-net-utils makes its own) and the module functions
	# (dns.reverse, dns.promises.resolveTxt, ...). All get moat's dns_timeout/dns_tries
	# (1500 ms, 2): with net-utils' one 25 s try, a single lost UDP query fails a whole run
	# (450 when the sender check's 5 s are up).
	cat >"$site/preload.js" <<EOF
'use strict'
const dns = require('node:dns')
const servers = ['127.0.0.1:$dnsport']
const opts = { timeout: 1500, tries: 2 }
// first: setServers also rebinds the module functions to the default resolver
dns.setServers(servers)
dns.promises.setServers(servers)
for (const mod of [dns, dns.promises]) {
    const Base = mod.Resolver
    class Resolver extends Base {
        constructor(o) {
            super({ ...o, ...opts })
            this.setServers(servers)
        }
    }
    mod.Resolver = Resolver
    // the module functions use a default resolver whose options cannot be changed
    const r = new Resolver()
    for (const name of Object.getOwnPropertyNames(Base.prototype)) {
        if (name.startsWith('resolve') || name === 'reverse') mod[name] = r[name].bind(r)
    }
}
EOF
	if [ "$nodelay" = 1 ]; then
		# smtp_forward's socket keeps Nagle on (no option for it): each forwarded message then
		# waits ~40 ms for a delayed ACK. Set TCP_NODELAY on every socket, made or accepted.
		cat >>"$site/preload.js" <<'EOF'
const net = require('node:net')
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
    this.setNoDelay(true)
    return connect.apply(this, args)
}
const emit = net.Server.prototype.emit
net.Server.prototype.emit = function (event, socket, ...rest) {
    if (event === 'connection' && socket?.setNoDelay) socket.setNoDelay(true)
    return emit.call(this, event, socket, ...rest)
}
EOF
	fi

	echo "$(command -v node) -r $site/preload.js $dir/node_modules/Haraka/bin/haraka -c $site"
}

[ $# -ge 1 ] || usage
sub=$1
shift
case $sub in
install) cmd_install "$@" ;;
config) cmd_config "$@" ;;
*) usage ;;
esac
