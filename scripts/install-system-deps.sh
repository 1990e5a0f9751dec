#!/usr/bin/env bash
# Install the programs functional tests and benchmarks need: the nameservers
# of a pool (BIND9's named, rndc, dig; Knot's knotd, knotc, kdig; NSD;
# PowerDNS with its SQLite backend), ZooKeeper (and Java), PostgreSQL,
# graphviz's dot, OpenStack Keystone (the API's keystone authentication is
# tested against a real one), iproute2 and nftables (a conductor cut off from
# ZooKeeper in a network namespace), dnsperf for the benchmarks, and chromium
# (the dashboard's browser tests drive it with Playwright).
# Idempotent: apt runs only when something is missing. Non-interactive, for
# CI; prints one line saying what it installed or that all is present.
set -euo pipefail

missing=()   # what is missing, for the message
packages=()  # Debian packages that provide it
lean=()      # ... installed without their recommends (Keystone's would bring GTK)

has_command() {
    # named and rndc live in /usr/sbin, which a non-root PATH may lack.
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

has_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || has_command initdb
}

need() {  # need <what> <package>
    missing+=("$1")
    case " ${packages[*]} " in
        *" $2 "*) ;;
        *) packages+=("$2") ;;
    esac
}

need_lean() {  # need_lean <what> <package>
    missing+=("$1")
    lean+=("$2")
}

check() {
    missing=()
    packages=()
    lean=()
    has_command named || need named bind9
    has_command rndc || need rndc bind9-utils
    has_command dig || need dig dnsutils
    has_command dnsperf || need dnsperf dnsperf
    has_command knotd || need knotd knot
    has_command kdig || need kdig knot-dnsutils
    has_command nsd || need nsd nsd
    has_command pdns_server || need pdns_server pdns-server
    compgen -G '/usr/lib/*/pdns/libgsqlite3backend.so' >/dev/null || need pdns-gsqlite3 pdns-backend-sqlite3
    [ -f /usr/share/java/zookeeper.jar ] || need zookeeper.jar zookeeper
    # zookeeper brings a JRE; a machine with the jar but no java needs one.
    has_command java || need java default-jre-headless
    has_postgres || need postgres postgresql
    has_command dot || need dot graphviz
    has_command keystone-manage || need_lean keystone-manage python3-keystone
    # The fencing test puts a conductor in a network namespace (ip netns, a veth
    # pair) and cuts it off from ZooKeeper with an nftables rule.
    has_command ip || need ip iproute2
    has_command nft || need nft nftables
    # The dashboard's browser tests: Playwright drives the distribution's chromium.
    has_command chromium || need chromium chromium
}

check
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system-deps: all present (named rndc dig dnsperf knotd kdig nsd pdns_server java zookeeper.jar postgres dot keystone-manage ip nft chromium)"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    echo "install-system-deps: missing ${missing[*]}; run as root to install ${packages[*]} ${lean[*]}" >&2
    exit 1
fi

log=$(mktemp)
own_policy=false
cleanup() {
    rm -f "$log"
    if $own_policy; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
# Package scripts would start system named/postgres/zookeeper daemons the tests
# never use; a policy-rc.d that says "no" keeps them down while apt runs
# (Docker images already ship one).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=true
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d
fi

apt_install() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        -o DPkg::Lock::Timeout=300 "$@"
}
if ! {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update \
        && { [ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"; } \
        && { [ ${#lean[@]} -eq 0 ] || apt_install --no-install-recommends "${lean[@]}"; }
} </dev/null >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "install-system-deps: apt-get failed installing ${packages[*]} ${lean[*]}" >&2
    exit 1
fi

installed=("${packages[@]}" "${lean[@]}")
was_missing=("${missing[@]}")
check
if [ ${#missing[@]} -ne 0 ]; then
    echo "install-system-deps: installed ${installed[*]} but still missing ${missing[*]}" >&2
    exit 1
fi
echo "install-system-deps: installed ${installed[*]} (for ${was_missing[*]})"
