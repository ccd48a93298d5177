#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests of the postgres store.
#
#   scripts/pg-cluster.sh start DIR PORT   initdb a cluster in DIR, serve it on 127.0.0.1:PORT only,
#                                          create the database panther_test and print its DSN
#   scripts/pg-cluster.sh stop DIR         stop the cluster and remove DIR
#
# The cluster trusts every loopback connection and runs with fsync off: it is for tests and holds
# nothing worth keeping. As root the server runs as the postgres user (PostgreSQL refuses root);
# otherwise as the calling user.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=panther_test

usage() {
	echo "usage: $0 start DIR PORT | stop DIR" >&2
	exit 2
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start() {
	local dir=$1 port=$2
	case $port in '' | *[!0-9]*) echo "pg-cluster: port $port is not a number" >&2; exit 2 ;; esac
	if [ ! -x "$PGBIN/initdb" ]; then
		echo "pg-cluster: no PostgreSQL binaries in $PGBIN (install postgresql-15 or set PGBIN)" >&2
		exit 1
	fi
	if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
		echo "pg-cluster: $dir exists and is not empty; refusing to use it" >&2
		exit 1
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		chown postgres:postgres "$dir"
	fi
	chmod 700 "$dir"
	# -N: no fsync while initialising either; C.UTF-8 so that sorting is bytewise and needs no locale package.
	as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	# The socket lives in DIR, so nothing outside it (/var/run/postgresql) is needed or touched.
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null || {
		cat "$dir/server.log" >&2
		exit 1
	}
	as_owner "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB"
	echo "postgres://postgres@127.0.0.1:$port/$DB?sslmode=disable"
}

stop() {
	local dir=$1
	if [ -d "$dir/data" ]; then
		as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -e "$dir" ]; then
		rm -rf "$dir"
	fi
}

case ${1:-} in
start) [ $# = 3 ] || usage; start "$2" "$3" ;;
stop) [ $# = 2 ] || [ $# = 3 ] || usage; stop "$2" ;;
*) usage ;;
esac
