#!/usr/bin/env bash
# Emulation only: the testbed's stand-in for a BlueField's `devlink`, bind-mounted over the devlink
# binary inside one emulated DPU's private mount namespace (see testbed.sh, ANCHOR_SCRIPT). It knows
# just what dpu-overlay uses, shaped like iproute2's devlink on a DPU-mode BlueField:
#   devlink -j port show [HANDLE]              uplink p0, host PF pf0hpf, VF representors pf0vf<N>
#   devlink -j port function rate show         rate leaves, tx_share/tx_max in bytes/s
#   devlink port function set HANDLE [hw_addr MAC] [state active|inactive]
#   devlink port function rate set HANDLE [tx_share Nmbit] [tx_max Nmbit]
# Values persist in files under STATE_DIR. A hw_addr write also takes effect on the emulated VF (the
# host-side veth ens1f0v<N>) when that VF is in the host namespace, as a real VF driver would take
# the new MAC on its next probe. State and rates are recorded, not enforced.
#
# Usage (from the per-DPU wrapper testbed.sh writes): devlink-standin.sh STATE_DIR HOST_NETNS VFS ARGS...
set -euo pipefail

state=$1 hostns=$2 vfs=$3
shift 3
DEV=pci/0000:03:00.0
mkdir -p "$state"

fail() { echo "devlink: $*" >&2; exit 1; }
get() { # rep attr default
  if [[ -f $state/$1.$2 ]]; then cat "$state/$1.$2"; else echo "$3"; fi
}
vf_of_handle() { # pci/0000:03:00.0/<N+1> -> N
  [[ $1 =~ ^$DEV/([0-9]+)$ ]] || return 1
  local idx=${BASH_REMATCH[1]}
  ((idx >= 1 && idx <= vfs)) || return 1
  echo $((idx - 1))
}

port_json() { # handle
  local h=$1 n
  case $h in
    "$DEV/65535") printf '"%s":{"type":"eth","netdev":"p0","flavour":"physical","port":0,"splittable":false}' "$h" ;;
    "$DEV/0") printf '"%s":{"type":"eth","netdev":"pf0hpf","flavour":"pcipf","controller":1,"pfnum":0,"external":true,"splittable":false,"function":{"hw_addr":"02:00:03:00:00:00"}}' "$h" ;;
    *)
      n=$(vf_of_handle "$h") || return 1
      printf '"%s":{"type":"eth","netdev":"pf0vf%d","flavour":"pcivf","controller":1,"pfnum":0,"vfnum":%d,"external":true,"splittable":false,"function":{"hw_addr":"%s","state":"%s","opstate":"attached"}}' \
        "$h" "$n" "$n" "$(get "pf0vf$n" hw_addr 00:00:00:00:00:00)" "$(get "pf0vf$n" state active)"
      ;;
  esac
}

port_show() {
  local out="" n
  if (($# == 1)); then
    out=$(port_json "$1") || fail "port $1 not found"
  else
    out="$(port_json "$DEV/65535"),$(port_json "$DEV/0")"
    for ((n = 0; n < vfs; n++)); do out+=",$(port_json "$DEV/$((n + 1))")"; done
  fi
  printf '{"port":{%s}}\n' "$out"
}

rate_show() {
  local out="" n h sep="" share max
  for ((n = 0; n < vfs; n++)); do
    h=$DEV/$((n + 1))
    out+="$sep\"$h\":{\"type\":\"leaf\""
    share=$(get "pf0vf$n" tx_share 0) max=$(get "pf0vf$n" tx_max 0)
    # iproute2 leaves a zero rate out
    ((share)) && out+=",\"tx_share\":$share"
    ((max)) && out+=",\"tx_max\":$max"
    out+="}"
    sep=,
  done
  printf '{"rate":{%s}}\n' "$out"
}

function_set() {
  local n
  n=$(vf_of_handle "$1") || fail "port $1 has no settable function"
  shift
  while (($#)); do
    case $1 in
      hw_addr)
        [[ ${2:-} =~ ^[0-9a-f]{2}(:[0-9a-f]{2}){5}$ ]] || fail "bad hw_addr ${2:-}"
        echo "$2" >"$state/pf0vf$n.hw_addr"
        if [[ $2 != 00:00:00:00:00:00 ]] && ip -n "$hostns" link show dev "ens1f0v$n" >/dev/null 2>&1; then
          ip -n "$hostns" link set dev "ens1f0v$n" address "$2"
        fi
        ;;
      state)
        [[ ${2:-} == active || ${2:-} == inactive ]] || fail "bad state ${2:-}"
        echo "$2" >"$state/pf0vf$n.state"
        ;;
      *) fail "unsupported function attribute $1" ;;
    esac
    shift 2
  done
}

rate_set() {
  local n
  n=$(vf_of_handle "$1") || fail "rate object $1 not found"
  shift
  while (($#)); do
    [[ $1 == tx_share || $1 == tx_max ]] || fail "unsupported rate attribute $1"
    [[ ${2:-} =~ ^([0-9]+)mbit$ ]] || fail "bad rate ${2:-}"
    echo $((BASH_REMATCH[1] * 125000)) >"$state/pf0vf$n.$1"
    shift 2
  done
}

case "$*" in
  "-j port show") port_show ;;
  "-j port show "*) port_show "$4" ;;
  "-j port function rate show") rate_show ;;
  "port function set "*) shift 3; function_set "$@" ;;
  "port function rate set "*) shift 4; rate_set "$@" ;;
  *) fail "the testbed's devlink stand-in does not implement: $*" ;;
esac
