#!/bin/sh
# xen-permit.sh — run in dom0 by the Xen host's administrator, so that xway in guest domains can
# find each other. It records which domain owns which IP addresses under /local/xway/hosts
# (address -> domain id; xway's switch reads it to learn that a TCP peer is a co-resident domain),
# lets exactly the recorded domains read that map (dom0 alone writes it: a guest cannot claim
# another guest's address), and makes sure each recorded guest owns /local/domain/<id>/data,
# where its listening endpoints are published (xl/libxl already create it so; other toolstacks
# may not), and lets each recorded guest read the others' /local/domain/<id>/domid, so that a
# guest notices at once when a peer's domain is destroyed.
#
# Usage:
#   xen-permit.sh DOMID=ADDR[,ADDR...] [DOMID=ADDR[,ADDR...] ...]   record (or replace) addresses
#   xen-permit.sh --revoke DOMID [DOMID ...]                        forget a domain's addresses
#   xen-permit.sh --list                                            show the map
# Needs: xenstore-read/-write/-rm/-list/-chmod (Debian: xenstore-utils), run as root in dom0.
set -eu
MAP=/local/xway/hosts

die() { echo "xen-permit: $*" >&2; exit 2; }
key() { echo "$1" | tr 'A-Z.:' 'a-z-_'; }   # a XenStore node name: [a-z0-9_-]
addr_of() { echo "$1" | tr '_-' ':.'; }      # only for --list (IPv4 exact; IPv6 as written)
domid_ok() { case $1 in ''|*[!0-9]*) return 1;; esac; [ "$1" -le 32751 ]; }

# Every node of the map readable by the domains it names, owned by dom0.
apply_perms() {
  readers=""
  for k in $(xenstore-list "$MAP" 2>/dev/null); do
    d=$(xenstore-read "$MAP/$k")
    [ "$d" = 0 ] && continue
    case " $readers " in *" r$d "*) ;; *) readers="$readers r$d";; esac
  done
  # shellcheck disable=SC2086
  xenstore-chmod /local/xway n0 $readers
  # shellcheck disable=SC2086
  xenstore-chmod "$MAP" n0 $readers
  for k in $(xenstore-list "$MAP" 2>/dev/null); do
    # shellcheck disable=SC2086
    xenstore-chmod "$MAP/$k" n0 $readers
  done
  # Each recorded guest may read the others' /local/domain/<id>/domid (the toolstack makes it
  # readable by the domain itself only): when a peer domain is destroyed, the toolstack removes
  # that node, and xway's watch on it fires only for a domain that may read it. Without this a
  # guest learns of a destroyed peer only from what it reads in the channel, which a destroyed
  # domain never writes again.
  for d in $readers; do
    d=${d#r}
    xenstore-read "/local/domain/$d/domid" >/dev/null 2>&1 || continue
    others=$(for o in $readers; do [ "$o" = "r$d" ] || printf ' %s' "$o"; done)
    # shellcheck disable=SC2086
    xenstore-chmod "/local/domain/$d/domid" n0 "r$d" $others
  done
}

forget() { # domid
  for k in $(xenstore-list "$MAP" 2>/dev/null); do
    [ "$(xenstore-read "$MAP/$k")" = "$1" ] && xenstore-rm "$MAP/$k"
  done
  # Its domid node back to the toolstack's permissions (apply_perms adds the remaining peers).
  if [ "$1" != 0 ] && xenstore-read "/local/domain/$1/domid" >/dev/null 2>&1; then xenstore-chmod "/local/domain/$1/domid" n0 "r$1"; fi
  return 0
}

[ $# -ge 1 ] || die "usage: xen-permit.sh DOMID=ADDR[,ADDR...] ... | --revoke DOMID ... | --list"
command -v xenstore-write >/dev/null || die "xenstore-write not found (apt-get install xenstore-utils)"
xenstore-write "$MAP" "" 2>/dev/null || xenstore-read "$MAP" >/dev/null || die "cannot write $MAP (run as root in dom0)"

case $1 in
--list)
  for k in $(xenstore-list "$MAP" 2>/dev/null); do echo "$(addr_of "$k") -> domain $(xenstore-read "$MAP/$k")"; done
  exit 0 ;;
--revoke)
  shift
  for d in "$@"; do domid_ok "$d" || die "not a domain id: $d"; forget "$d"; echo "domain $d: addresses forgotten"; done
  apply_perms
  exit 0 ;;
esac

for arg in "$@"; do
  d=${arg%%=*}; addrs=${arg#*=}
  [ "$d" != "$arg" ] && [ -n "$addrs" ] || die "expected DOMID=ADDR[,ADDR...], got '$arg'"
  domid_ok "$d" || die "not a domain id: $d"
  # XenStore refuses permissions that name a domain it does not know.
  xenstore-read "/local/domain/$d/domid" >/dev/null 2>&1 || die "domain $d does not exist (no /local/domain/$d/domid)"
  forget "$d"
  for a in $(echo "$addrs" | tr ',' ' '); do
    k=$(key "$a")
    case $k in *[!a-z0-9_-]*|'') die "not an IP address: $a";; esac
    xenstore-write "$MAP/$k" "$d"
    echo "$a -> domain $d"
  done
  if [ "$d" != 0 ]; then
    # The guest publishes endpoints in its own data directory: it must own it.
    xenstore-read "/local/domain/$d/data" >/dev/null 2>&1 || xenstore-write "/local/domain/$d/data" ""
    xenstore-chmod "/local/domain/$d/data" "n$d"
  fi
done
apply_perms
