#!/usr/bin/env bash
# Emulation only: the testbed's stand-in for a BlueField's `devlink`, bind-mounted over the devlink
# binary inside one emulated DPU's private mount namespace (see testbed.sh, ANCHOR_SCRIPT). It knows
# just what dpu-overlay uses, shaped like iproute2's devlink on a DPU-mode BlueField:
#   devlink -j port show [HANDLE]              uplink p0, host PF pf<P>hpf, VF representors pf<P>vf<N>
#   devlink -j port function rate show         rate leaves, tx_share/tx_max in bytes/s
#   devlink port function set HANDLE [hw_addr MAC] [state active|inactive]
#   devlink port function rate set HANDLE [tx_share Nmbit] [tx_max Nmbit]
# Values persist in files under STATE_DIR. A hw_addr write also takes effect on the emulated VF (the
# host-side veth ens1f<P>v<N>) when that VF is in the host namespace, as a real VF driver would take
# the new MAC on its next probe. State and rates are recorded, not enforced.
#
# Usage (from the per-DPU wrapper testbed.sh writes): devlink-standin.sh STATE_DIR HOST_NETNS VFS PF ARGS...
# (PF: the port index, 1 for the representors pf1vf<N> of the host's second PF ens1f1np1)
set -euo pipefail

state=$1 hostns=$2 vfs=$3 pf=$4
shift 4
DEV=pci/0000:03:00.$pf
mkdir -p "$state"

fail() { echo "devlink: $*" >&2; exit 1; }
# No command substitutions below: `devlink -j port show` on a DPU with 200 VFs must not fork hundreds of times.
get() { # var rep attr default: sets var
  local -n _out=$1
  _out=$4
  [[ ! -f $state/$2.$3 ]] || read -r _out <"$state/$2.$3"
}
vf_of_handle() { # var handle: sets var to N for pci/0000:03:00.0/<N+1>
  local -n _vf=$1
  [[ $2 =~ ^$DEV/([0-9]+)$ ]] || return 1
  local idx=${BASH_REMATCH[1]}
  ((idx >= 1 && idx <= vfs)) || return 1
  _vf=$((idx - 1))
}

out=""
port_json() { # handle: appends to out
  local h=$1 n mac st
  case $h in
    "$DEV/65535") out+="\"$h\":{\"type\":\"eth\",\"netdev\":\"p0\",\"flavour\":\"physical\",\"port\":0,\"splittable\":false}" ;;
    "$DEV/0") out+="\"$h\":{\"type\":\"eth\",\"netdev\":\"pf${pf}hpf\",\"flavour\":\"pcipf\",\"controller\":1,\"pfnum\":$pf,\"external\":true,\"splittable\":false,\"function\":{\"hw_addr\":\"02:00:03:00:00:00\"}}" ;;
    *)
      vf_of_handle n "$h" || return 1
      get mac "pf${pf}vf$n" hw_addr 00:00:00:00:00:00
      get st "pf${pf}vf$n" state active
      out+="\"$h\":{\"type\":\"eth\",\"netdev\":\"pf${pf}vf$n\",\"flavour\":\"pcivf\",\"controller\":1,\"pfnum\":$pf,\"vfnum\":$n,\"external\":true,\"splittable\":false,\"function\":{\"hw_addr\":\"$mac\",\"state\":\"$st\",\"opstate\":\"attached\"}}"
      ;;
  esac
}

port_show() {
  local n
  if (($# == 1)); then
    port_json "$1" || fail "port $1 not found"
  else
    port_json "$DEV/65535"
    out+=","
    port_json "$DEV/0"
    for ((n = 0; n < vfs; n++)); do
      out+=","
      port_json "$DEV/$((n + 1))"
    done
  fi
  printf '{"port":{%s}}\n' "$out"
}

rate_show() {
  local n h sep="" share max
  for ((n = 0; n < vfs; n++)); do
    h=$DEV/$((n + 1))
    out+="$sep\"$h\":{\"type\":\"leaf\""
    get share "pf${pf}vf$n" tx_share 0
    get max "pf${pf}vf$n" tx_max 0
    # iproute2 leaves a zero rate out
    ((share == 0)) || out+=",\"tx_share\":$share"
    ((max == 0)) || out+=",\"tx_max\":$max"
    out+="}"
    sep=,
  done
  printf '{"rate":{%s}}\n' "$out"
}

function_set() {
  local n
  vf_of_handle n "$1" || fail "port $1 has no settable function"
  shift
  while (($#)); do
    case $1 in
      hw_addr)
        [[ ${2:-} =~ ^[0-9a-f]{2}(:[0-9a-f]{2}){5}$ ]] || fail "bad hw_addr ${2:-}"
        echo "$2" >"$state/pf${pf}vf$n.hw_addr"
        if [[ $2 != 00:00:00:00:00:00 ]] && ip -n "$hostns" link show dev "ens1f${pf}v$n" >/dev/null 2>&1; then
          ip -n "$hostns" link set dev "ens1f${pf}v$n" address "$2"
        fi
        ;;
      state)
        [[ ${2:-} == active || ${2:-} == inactive ]] || fail "bad state ${2:-}"
        echo "$2" >"$state/pf${pf}vf$n.state"
        ;;
      *) fail "unsupported function attribute $1" ;;
    esac
    shift 2
  done
}

rate_set() {
  local n
  vf_of_handle n "$1" || fail "rate object $1 not found"
  shift
  while (($#)); do
    [[ $1 == tx_share || $1 == tx_max ]] || fail "unsupported rate attribute $1"
    [[ ${2:-} =~ ^([0-9]+)mbit$ ]] || fail "bad rate ${2:-}"
    echo $((BASH_REMATCH[1] * 125000)) >"$state/pf${pf}vf$n.$1"
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
