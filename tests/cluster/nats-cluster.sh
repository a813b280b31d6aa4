#!/bin/sh
# nats-cluster.sh - a real 3-node nats-server cluster on 127.0.0.1 in a directory.
#
#   nats-cluster.sh start DIR    pick 9 free ports, write DIR/n{1,2,3}.conf, start the
#                                three servers, wait until each reports JetStream healthy
#                                (and a meta leader is elected); print the client URL list,
#                                also left in DIR/urls.  Monitoring ports in DIR/http.
#   nats-cluster.sh stop DIR     kill -TERM the servers started in DIR, wait for them.
#   nats-cluster.sh kill DIR N   kill -9 node N (1..3).
#   nats-cluster.sh restart DIR N  start node N again on its ports and state.
#
# The config is the one in ../shared/SCALEOUT.md: max_payload 8MB, file store
# under DIR/state.  Exits non-zero, servers stopped, if the cluster is not up in 30 s.
set -eu
cmd=${1:?start|stop|kill|restart}
dir=${2:?directory}
server=${NATS_SERVER:-nats-server}

node_start() {
	"$server" -c "$dir/n$1.conf" >>"$dir/n$1.log" 2>&1 &
	echo $! >"$dir/n$1.pid"
}

healthy() { # port
	/usr/bin/python3 - "$1" <<'PY'
import sys, urllib.request, json
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/healthz?js-enabled-only=true" % sys.argv[1], timeout=1) as r:
        ok = json.load(r).get("status") == "ok"
    with urllib.request.urlopen("http://127.0.0.1:%s/jsz" % sys.argv[1], timeout=1) as r:
        ok = ok and bool(json.load(r).get("meta_cluster", {}).get("leader"))
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}

wait_healthy() { # nodes...
	i=0
	while [ $i -lt 300 ]; do
		all=1
		for n in "$@"; do
			healthy "$(sed -n "${n}p" "$dir/http")" || all=0
		done
		[ $all = 1 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

case $cmd in
start)
	mkdir -p "$dir/state"
	# nine distinct free ports, held until all are chosen
	set -- $(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
	c1=$1 c2=$2 c3=$3 r1=$4 r2=$5 r3=$6 h1=$7 h2=$8 h3=$9
	printf '%s\n%s\n%s\n' "$h1" "$h2" "$h3" >"$dir/http"
	printf 'nats://127.0.0.1:%s,nats://127.0.0.1:%s,nats://127.0.0.1:%s\n' "$c1" "$c2" "$c3" >"$dir/urls"
	for n in 1 2 3; do
		eval c=\$c$n h=\$h$n r=\$r$n
		cat >"$dir/n$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:$c
http: 127.0.0.1:$h
max_payload: 8MB
jetstream { store_dir: "$dir/state/n$n", max_mem_store: 64MB, max_file_store: 2GB }
cluster {
  name: svtest
  listen: 127.0.0.1:$r
  routes: [ nats-route://127.0.0.1:$r1, nats-route://127.0.0.1:$r2, nats-route://127.0.0.1:$r3 ]
}
CONF
		node_start $n
	done
	if ! wait_healthy 1 2 3; then
		echo "nats-cluster: not healthy after 30 s; logs in $dir" >&2
		"$0" stop "$dir" || true
		exit 1
	fi
	cat "$dir/urls"
	;;
stop)
	for n in 1 2 3; do
		[ -f "$dir/n$n.pid" ] || continue
		kill -TERM "$(cat "$dir/n$n.pid")" 2>/dev/null || true
	done
	for n in 1 2 3; do
		[ -f "$dir/n$n.pid" ] || continue
		p=$(cat "$dir/n$n.pid")
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null || true
		rm -f "$dir/n$n.pid"
	done
	;;
kill)
	n=${3:?node}
	kill -KILL "$(cat "$dir/n$n.pid")" 2>/dev/null || true
	rm -f "$dir/n$n.pid"
	;;
restart)
	n=${3:?node}
	node_start "$n"
	wait_healthy "$n" || { echo "nats-cluster: node $n not healthy" >&2; exit 1; }
	;;
*)
	echo "usage: $0 start|stop|kill|restart DIR [N]" >&2
	exit 2
	;;
esac
