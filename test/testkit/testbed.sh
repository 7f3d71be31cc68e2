#!/usr/bin/env bash
# dpu-overlay e2e testbed: emulates hosts with SR-IOV VFs and BlueField DPUs
# (OVS userspace datapath + sshd) with network namespaces, veth pairs and a
# Linux bridge underlay. See testbed.md next to this file.
#
#   testbed.sh up [--sites a,b,c] [--vfs N] [--pfs 1|2] [--ovn]   build (rebuilds if already up)
#   testbed.sh down                           tear down (ok if nothing is up)
#   testbed.sh env                            JSON description on stdout
#   testbed.sh status                         human readable state (LSB exit codes)
#   testbed.sh dpu-exec <dpu> <cmd...>        run cmd in the DPU's net+mount ns
#   testbed.sh dpu-ctl <dpu> ACTION           fault injection: sshd-stop (with its sessions), sshd-start,
#                                             vswitchd-restart, db-reset,
#                                             ovs-stop (ovs-vswitchd and ovsdb-server),
#                                             ovn-controller-stop|-start|-restart (--ovn)
#   testbed.sh ovn-ctl ACTION                 --ovn central faults: nb-stop, nb-start, nb-block,
#                                             nb-unblock, sb-stop, sb-start, northd-stop, northd-start
#   testbed.sh ovn-nbctl|ovn-sbctl <args...>  run against the central's NB/SB (unix socket)
#   testbed.sh daemon-start [site...]         one `dpu-overlay daemon` per emulated host (default: every
#                                             site), in the host's netns, socket <state>/daemon-X/d.sock
#   testbed.sh daemon-stop [site...]          stop them and remove their sockets (down does too)
#
# State dir: ${DPUO_TESTBED_DIR:-/run/<prefix>-testbed}; netns names <prefix>-host-X,
# <prefix>-dpu-X (and <prefix>-dpu-X2 with --pfs 2), <prefix>-underlay (and <prefix>-ovn with --ovn) with prefix
# ${DPUO_TESTBED_PREFIX:-dpuo}. A DPU is named by its site (X), the second PF's by X2.
set -euo pipefail

# Namespace name prefix: lets several testbeds (e.g. parallel developers) coexist.
PREFIX=${DPUO_TESTBED_PREFIX:-dpuo}
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,7}$ ]] || { echo "DPUO_TESTBED_PREFIX must be 1-8 lowercase letters/digits" >&2; exit 1; }
STATE=${DPUO_TESTBED_DIR:-/run/$PREFIX-testbed}
STATE=${STATE%/}
UNDERLAY_NS=$PREFIX-underlay
OVN_NS=$PREFIX-ovn
UNDERLAY=ipv4
OVN_IP=198.51.100.254
OVN_NB_SCHEMA=/usr/share/ovn/ovn-nb.ovsschema
OVN_SB_SCHEMA=/usr/share/ovn/ovn-sb.ovsschema
OVN=0
MAX_PFS=2
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
SSHD=/usr/sbin/sshd
DEFAULT_SITES=a,b,c
DEFAULT_VFS=8
MAX_VFS=200
MARKER=.dpuo-testbed
PROG=${0##*/}
TESTKIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
msg() { printf '%s: %s\n' "$PROG" "$*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $PROG up [--sites a,b,c] [--vfs N] [--pfs 1|2] [--ovn] [--underlay ipv4|ipv6]
       $PROG down
       $PROG env
       $PROG status
       $PROG dpu-exec <dpu> <cmd...>      (dpu: a site X, or X2 for its second PF's DPU)
       $PROG dpu-ctl <dpu> sshd-stop|sshd-start|vswitchd-restart|db-reset|ovs-stop
                           |ovn-controller-stop|ovn-controller-start|ovn-controller-restart
       $PROG ovn-ctl nb-stop|nb-start|nb-block|nb-unblock|sb-stop|sb-start|northd-stop|northd-start
       $PROG ovn-nbctl|ovn-sbctl <args...>
       $PROG daemon-start|daemon-stop [site...]   (binary: \$DPU_OVERLAY_BIN, default dist/dpu-overlay)
state dir: \${DPUO_TESTBED_DIR:-/run/$PREFIX-testbed} (now: $STATE)
EOF
}

# ---------------------------------------------------------------- helpers
site_index() { # a..z -> 0..25
  local c=$1
  printf -v c '%d' "'$c"
  echo $((c - 97))
}
# A DPU is named by its site (X, the first PF's) or X2 (the second PF's); its index
# numbers its addresses: the site's index, +26 for X2 (so 0..51).
dpu_index() {
  local i
  i=$(site_index "${1:0:1}")
  [[ ${1:1} == 2 ]] && i=$((i + 26))
  echo "$i"
}
dpu_of() { # site pf-number -> DPU name
  if (($2 == 0)); then echo "$1"; else echo "$1$(($2 + 1))"; fi
}
pf_name() { echo "ens1f${1}np$1"; }
pf_pci() { echo "0000:03:00.$1"; }
all_dpus() { # every DPU of the config read by read_config
  local s p out=()
  for s in "${SITES[@]}"; do
    for ((p = 0; p < PFS; p++)); do out+=("$(dpu_of "$s" "$p")"); done
  done
  echo "${out[*]}"
}
host_ns() { echo "$PREFIX-host-$1"; }
dpu_ns() { echo "$PREFIX-dpu-$1"; }
mgmt_host_ip() { echo "192.0.2.$((4 * $1 + 1))"; }
mgmt_dpu_ip() { echo "192.0.2.$((4 * $1 + 2))"; }
# the VTEPs: 198.51.100.0/24, or with --underlay ipv6 the documentation prefix 2001:db8::/32 (uplinks IPv6-only)
vtep_ip() { if [[ $UNDERLAY == ipv6 ]]; then echo "2001:db8:100::$(($1 + 1))"; else echo "198.51.100.$(($1 + 1))"; fi; }
vtep_cidr() { if [[ $UNDERLAY == ipv6 ]]; then echo "$(vtep_ip "$1")/64 nodad"; else echo "$(vtep_ip "$1")/24"; fi; }
# the OVN central's underlay address, and as an OVSDB remote wants it (IPv6 in brackets)
set_ovn_ip() { if [[ $UNDERLAY == ipv6 ]]; then OVN_IP=2001:db8:100::fe; else OVN_IP=198.51.100.254; fi; }
ovn_remote_ip() { if [[ $UNDERLAY == ipv6 ]]; then echo "[$OVN_IP]"; else echo "$OVN_IP"; fi; }
vf_pci() { # VF index [PF number] -> PCI address (devfn = 2 + index; bus 03 for PF 0, 04 for PF 1)
  local devfn=$((2 + $1))
  printf '0000:%02x:%02x.%d' $((3 + ${2:-0})) $((devfn >> 3)) $((devfn & 7))
}
vf_mac() { printf '02:00:00:%02x:%02x:%02x' "$1" $(($2 >> 8)) $(($2 & 255)); }
rep_mac() { printf '02:00:01:%02x:%02x:%02x' "$1" $(($2 >> 8)) $(($2 & 255)); }
p0_mac() { printf '02:00:02:%02x:00:00' "$1"; }
pf_mac() { printf '02:00:03:%02x:00:00' "$1"; }
mgmt_net() { echo "192.0.2.$((4 * $1))/30"; }
# OVN chassis name of a DPU: unique per testbed and never equal to a hostname (requested-chassis
# matches hostnames too; a DPU's hostname is its netns name)
system_id() { echo "$PREFIX-chassis-$1"; }

ns_exists() { [[ -e /run/netns/$1 ]]; }

# process exists and is not a zombie (our daemons are reparented to pid 1,
# which may reap them only much later)
alive() {
  local st
  read -r st 2>/dev/null <"/proc/$1/stat" || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

# TERM the processes, KILL those still alive after 2 s
terminate() {
  local n=200 left p
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  while ((n-- > 0)); do
    left=()
    for p in "$@"; do alive "$p" && left+=("$p"); done
    ((${#left[@]})) || return 0
    sleep 0.01
  done
  kill -KILL "${left[@]}" 2>/dev/null || true
}

# pid of a live process from a pid file, or fail
pid_from_file() {
  local f=$1 pid
  [[ -r $f ]] || return 1
  read -r pid 2>/dev/null <"$f" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  echo "$pid"
}

# anchor pid of a site's DPU (the process holding its private mount ns)
anchor_pid() {
  local site=$1 pid
  pid=$(pid_from_file "$STATE/dpu-$site/anchor.pid") || return 1
  # the anchor must still live in the DPU's network namespace
  [[ /proc/$pid/ns/net -ef /run/netns/$(dpu_ns "$site") ]] || return 1
  echo "$pid"
}

wait_for_file() { # file timeout-in-1/100s
  local f=$1 n=${2:-500}
  while ((n-- > 0)); do
    [[ -s $f ]] && return 0
    sleep 0.01
  done
  return 1
}

require_tools() {
  local missing=() t
  for t in ip nft ethtool ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl \
    ovs-appctl ssh ssh-keygen unshare nsenter setsid flock; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [[ -x $SSHD ]] || missing+=("$SSHD")
  [[ -r $OVS_SCHEMA ]] || missing+=("$OVS_SCHEMA")
  if ((${#missing[@]})); then
    die "missing tools: ${missing[*]} (install: apt-get install -y openvswitch-switch openssh-server openssh-client iproute2 nftables ethtool util-linux)"
  fi
  if ((OVN)); then
    for t in ovn-controller ovn-northd ovn-nbctl ovn-sbctl ovn-appctl "$OVN_NB_SCHEMA" "$OVN_SB_SCHEMA"; do
      [[ -e $t ]] || command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing for --ovn: ${missing[*]} (install: apt-get install -y ovn-central ovn-host, or ./install.sh --dev)"
  fi
  [[ $(id -u) == 0 ]] || die "must run as root"
}

read_config() { # sets SITES (array), VFS and PFS; fails if not up
  local f=$STATE/config
  [[ -r $f ]] || return 1
  local line
  SITES=() VFS= PFS=1 OVN=0 UNDERLAY=ipv4
  while IFS='=' read -r k line; do
    case $k in
      sites) IFS=',' read -r -a SITES <<<"$line" ;;
      vfs) VFS=$line ;;
      pfs) PFS=$line ;;
      ovn) OVN=$line ;;
      underlay) UNDERLAY=$line ;;
    esac
  done <"$f"
  set_ovn_ip
  ((${#SITES[@]})) && [[ $VFS =~ ^[0-9]+$ && $PFS =~ ^[12]$ && $OVN =~ ^[01]$ ]]
}

lock() { # serialize up/down (netns names are global)
  exec 9<"${BASH_SOURCE[0]}"
  flock 9
}

# ---------------------------------------------------------------- down
# Kill processes we started for one DPU: everything living in the DPU
# anchor's private mount namespace (ovsdb-server, ovs-vswitchd, sshd and its
# sessions, dpu-exec commands) plus pid-file processes still in the DPU netns.
kill_site_procs() {
  local dir=$1 ns=$2 pids=() p apid f comm=
  # the anchor is a "sleep" in its own mount ns (and in the DPU netns while
  # that still exists)
  if apid=$(pid_from_file "$dir/anchor.pid"); then
    read -r comm 2>/dev/null <"/proc/$apid/comm" || comm=
    if [[ $comm != sleep || /proc/$apid/ns/mnt -ef /proc/$$/ns/mnt ]] ||
      { [[ -e /run/netns/$ns ]] && ! [[ /proc/$apid/ns/net -ef /run/netns/$ns ]]; }; then
      apid=
    fi
  fi
  if [[ -n $apid ]]; then
    for p in /proc/[0-9]*; do
      [[ $p/ns/mnt -ef /proc/$apid/ns/mnt ]] && pids+=("${p#/proc/}")
    done
  fi
  for f in "$dir/sshd.pid" "$dir/run/ovs-vswitchd.pid" "$dir/run/ovsdb-server.pid" "$dir/ovn/ovn-controller.pid"; do
    p=$(pid_from_file "$f") || continue
    [[ -e /run/netns/$ns && /proc/$p/ns/net -ef /run/netns/$ns ]] && pids+=("$p")
  done
  terminate "${pids[@]}"
}

cmd_down() {
  lock
  do_down
}

leftovers_present() {
  [[ -e $STATE/$MARKER ]] && return 0
  local ns
  for ns in /run/netns/$PREFIX-host-? /run/netns/$PREFIX-dpu-? /run/netns/$PREFIX-dpu-?2 "/run/netns/$UNDERLAY_NS" "/run/netns/$OVN_NS"; do
    [[ -e $ns ]] && return 0
  done
  return 1
}

do_down() {
  local found=0 dir site ns
  # sites recorded in the state dir
  if [[ -d $STATE ]]; then
    for dir in "$STATE"/daemon-? "$STATE"/daemon-?.pid; do
      [[ -e $dir ]] || continue
      found=1
      site=${dir##*/daemon-}
      host_daemon_stop "${site%.pid}"
    done
    for dir in "$STATE"/dpu-*; do
      [[ -d $dir ]] || continue
      site=${dir##*/dpu-}
      found=1
      kill_site_procs "$dir" "$(dpu_ns "$site")" &
    done
    [[ ! -d $STATE/ovn ]] || { found=1; kill_ovn_central & }
    wait
  fi
  # namespaces (also leftovers of a run whose state dir is gone)
  local nss=()
  for ns in /run/netns/$PREFIX-host-? /run/netns/$PREFIX-dpu-? /run/netns/$PREFIX-dpu-?2 "/run/netns/$UNDERLAY_NS" "/run/netns/$OVN_NS"; do
    [[ -e $ns ]] && nss+=("${ns##*/}")
  done
  local p n
  for ns in "${nss[@]}"; do
    found=1
    n=0
    for p in /proc/[0-9]*; do
      [[ $p/ns/net -ef /run/netns/$ns ]] && alive "${p#/proc/}" && n=$((n + 1))
    done
    ((n == 0)) || msg "warning: $n process(es) not started from $STATE still run in netns $ns (left alone)"
    ip netns del "$ns" 2>/dev/null || msg "warning: could not delete netns $ns"
  done
  # state dir: remove only what we created
  if [[ -e $STATE/$MARKER ]]; then
    found=1
    rm -rf -- "$STATE"/dpu-* "$STATE"/host-* "$STATE"/sysfs-template \
      "$STATE"/config "$STATE"/id_ed25519 "$STATE"/id_ed25519.pub \
      "$STATE"/authorized_keys "$STATE"/known_hosts "$STATE"/setup-*.log "$STATE"/ovn \
      "$STATE/$MARKER"
    rmdir -- "$STATE" 2>/dev/null || true
  fi
  ((found)) && msg "testbed down" || true
}

# ---------------------------------------------------------------- host daemons
# `dpu-overlay daemon` for emulated host $1, as install.sh's unit runs it on a real host but inside the host's
# netns (the plugin forwards only to a daemon in its own netns), serving and watching the plugin's stateDir there.
DPUO_BIN=${DPU_OVERLAY_BIN:-$TESTKIT/../../dist/dpu-overlay}
daemon_dir() { echo "$STATE/daemon-$1"; }
daemon_socket() { echo "$STATE/daemon-$1/d.sock"; }

# pid of site $1's daemon if it is alive and is the one we started (its command line names its socket)
host_daemon_pid() {
  local pid cmdline
  pid=$(pid_from_file "$STATE/daemon-$1.pid") || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *" daemon --socket $(daemon_socket "$1") "* ]] || return 1
  echo "$pid"
}

host_daemon_start() {
  local s=$1 ns sock pid
  ns=$(host_ns "$s") sock=$(daemon_socket "$s")
  ns_exists "$ns" || die "no emulated host $s (netns $ns); run: $PROG up"
  [[ -x $DPUO_BIN ]] || die "$DPUO_BIN is missing: run npm run build (or set DPU_OVERLAY_BIN)"
  if pid=$(host_daemon_pid "$s"); then
    msg "daemon of host $s already runs (pid $pid)"
    return 0
  fi
  rm -f -- "$sock" "$STATE/daemon-$s.pid"
  # `ip netns exec` and a non-leader `setsid` both exec: $! is the daemon's pid
  ip netns exec "$ns" setsid "$DPUO_BIN" daemon --socket "$sock" --state-dir "$STATE/plugin-$s" \
    --log-file "$STATE/daemon-$s.log" --log-level debug </dev/null >/dev/null 2>>"$STATE/daemon-$s.stderr" &
  pid=$!
  echo "$pid" >"$STATE/daemon-$s.pid"
  local n=1000
  while ((n-- > 0)); do
    [[ -S $sock ]] && return 0
    alive "$pid" || break
    sleep 0.01
  done
  terminate "$pid"
  die "daemon of host $s did not listen on $sock (see $STATE/daemon-$s.log and $STATE/daemon-$s.stderr)"
}

host_daemon_stop() {
  local s=$1 pid
  if pid=$(host_daemon_pid "$s"); then terminate "$pid"; fi
  rm -rf -- "$(daemon_dir "$s")" "$STATE/daemon-$s.pid"
}

cmd_daemon() { # start|stop [site...]
  local action=$1 s
  shift
  read_config || die "testbed is not up; run: $PROG up"
  (($#)) || set -- "${SITES[@]}"
  for s in "$@"; do
    [[ " ${SITES[*]} " == *" $s "* ]] || die "unknown site '$s' (sites: ${SITES[*]})"
    "host_daemon_$action" "$s"
  done
}

# ---------------------------------------------------------------- up
# Build one sysfs-shaped tree (identical for every host) at $1: $3 PFs with $2 VFs each.
build_sysfs() {
  local root=$1 vfs=$2 pfs=$3 n p pf ppci pci dirs=()
  local devs=$root/bus/pci/devices
  for ((p = 0; p < pfs; p++)); do
    pf=$(pf_name "$p") ppci=$(pf_pci "$p")
    dirs+=("$devs/$ppci/net/$pf" "$root/class/net/$pf")
    for ((n = 0; n < vfs; n++)); do
      pci=$(vf_pci "$n" "$p")
      dirs+=("$devs/$pci/net/ens1f${p}v$n" "$root/class/net/ens1f${p}v$n")
    done
  done
  mkdir -p "${dirs[@]}"
  for ((p = 0; p < pfs; p++)); do
    pf=$(pf_name "$p") ppci=$(pf_pci "$p")
    echo "$vfs" >"$devs/$ppci/sriov_numvfs"
    echo "$vfs" >"$devs/$ppci/sriov_totalvfs"
    # as mlx5 reports it (udev's "np<N>" suffix comes from it)
    echo "p$p" >"$root/class/net/$pf/phys_port_name"
    ln -s "../../../bus/pci/devices/$ppci" "$root/class/net/$pf/device"
    for ((n = 0; n < vfs; n++)); do
      pci=$(vf_pci "$n" "$p")
      ln -s "../$pci" "$devs/$ppci/virtfn$n"
      ln -s "../$ppci" "$devs/$pci/physfn"
      ln -s "../../../bus/pci/devices/$pci" "$root/class/net/ens1f${p}v$n/device"
    done
  done
}

ANCHOR_SCRIPT='set -e
hostname "$4"
mount --bind "$1" /var/run/openvswitch
mount --bind "$2" /root
[ ! -e /usr/sbin/devlink ] || mount --bind "$5" /usr/sbin/devlink
[ -z "$6" ] || mount --bind "$6" /var/run/ovn
echo $$ >"$3.tmp"
mv "$3.tmp" "$3"
exec sleep infinity'

# Set up one site: its host and one DPU per PF. Runs in the background, output goes to a log.
setup_site() {
  local site=$1 vfs=$2 pf_kind=$3 pfs=$4 p hns pids=() failed=0
  hns=$(host_ns "$site")
  ip netns add "$hns"
  {
    echo "link set lo up"
    for ((p = 0; p < pfs; p++)); do
      echo "link add $(pf_name "$p") address $(pf_mac "$(dpu_index "$(dpu_of "$site" "$p")")") type $pf_kind"
      echo "link set $(pf_name "$p") up"
    done
  } | ip -n "$hns" -batch -
  for ((p = 0; p < pfs; p++)); do
    setup_dpu "$site" "$p" "$vfs" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  # ---- sysfs tree for the host
  mkdir -p "$STATE/host-$site"
  cp -a "$STATE/sysfs-template" "$STATE/host-$site/sys"
  return "$failed"
}

# Set up the DPU of PF number $2 of site $1: VF/representor pairs, mgmt link, uplink, OVS, sshd.
setup_dpu() {
  local site=$1 p=$2 vfs=$3 dpu i
  dpu=$(dpu_of "$site" "$p")
  i=$(dpu_index "$dpu")
  local hns dns dir run home
  hns=$(host_ns "$site") dns=$(dpu_ns "$dpu")
  dir=$STATE/dpu-$dpu run=$STATE/dpu-$dpu/run home=$STATE/dpu-$dpu/home
  mkdir -p "$run" "$home" "$dir/db" "$dir/log" "$dir/ssh"
  local ovn_run=
  if ((OVN)); then
    ovn_run=$dir/ovn
    mkdir -p "$ovn_run"
  fi

  ip netns add "$dns"

  # ---- links (host side, VF/representor pairs, mgmt, uplink)
  {
    local n
    for ((n = 0; n < vfs; n++)); do
      echo "link add ens1f${p}v$n address $(vf_mac "$i" "$n") mtu 1500 type veth peer name pf${p}vf$n address $(rep_mac "$i" "$n") mtu 1500 netns $dns"
    done
    echo "link add mgmt$p type veth peer name mgmt0 netns $dns"
    echo "addr add $(mgmt_host_ip "$i")/30 dev mgmt$p"
    echo "link set mgmt$p up"
    # ACK at once: avoids 40 ms delayed-ACK/Nagle stalls in the SSH handshake
    echo "route replace $(mgmt_net "$i") dev mgmt$p proto kernel scope link src $(mgmt_host_ip "$i") quickack 1"
  } | ip -n "$hns" -batch -
  {
    echo "link set lo up"
    echo "addr add $(mgmt_dpu_ip "$i")/30 dev mgmt0"
    echo "link set mgmt0 up"
    echo "route replace $(mgmt_net "$i") dev mgmt0 proto kernel scope link src $(mgmt_dpu_ip "$i") quickack 1"
    for ((n = 0; n < vfs; n++)); do echo "link set pf${p}vf$n up"; done
    echo "link add p0 address $(p0_mac "$i") mtu 1500 type veth peer name p0-$dpu netns $UNDERLAY_NS"
    echo "link set p0 up"
  } | ip -n "$dns" -batch -
  ip -n "$UNDERLAY_NS" link set "p0-$dpu" master br-ul up

  # TX checksum offload off on both ends of every VF pair (userspace
  # datapath does not fill in checksums of offloaded packets)
  ip netns exec "$hns" sh -c 'n=0; while [ "$n" -lt "$1" ]; do ethtool -K "ens1f${2}v$n" tx off >/dev/null || exit 1; n=$((n+1)); done' sh "$vfs" "$p"
  ip netns exec "$dns" sh -c 'n=0; while [ "$n" -lt "$1" ]; do ethtool -K "pf${2}vf$n" tx off >/dev/null || exit 1; n=$((n+1)); done' sh "$vfs" "$p"

  # the DPU kernel must not answer VXLAN or Geneve (OVS reads p0 via a packet socket, which sees
  # the packets before this hook: the counters count what arrives on the wire)
  ip netns exec "$dns" nft -f - <<'EOF'
table netdev dpuo {
  chain ingress {
    type filter hook ingress device "p0" priority 0; policy accept;
    udp dport 4789 counter drop
    udp dport 6081 counter drop comment "geneve"
  }
}
EOF

  # ---- anchor: private mount (+UTS) ns with the OVS run dir on
  # /var/run/openvswitch and an empty /root; every DPU process joins it
  # emulation of DPU-mode VF settings: this DPU's devlink is a stand-in (devlink-standin.sh)
  printf '#!/bin/bash\nexec bash %q %q %q %q %q "$@"\n' "$TESTKIT/devlink-standin.sh" "$dir/devlink-state" "$hns" "$vfs" "$p" >"$dir/devlink"
  chmod 0755 "$dir/devlink"
  setsid -f ip netns exec "$dns" unshare -m -u --propagation private \
    sh -c "$ANCHOR_SCRIPT" anchor "$run" "$home" "$dir/anchor.pid" "$dns" "$dir/devlink" "$ovn_run" \
    </dev/null >/dev/null 2>>"$dir/log/anchor.log"
  wait_for_file "$dir/anchor.pid" 500 || {
    cat "$dir/log/anchor.log" >&2
    echo "anchor for DPU $dpu did not start" >&2
    return 1
  }

  # ---- OVS (default paths inside the mount ns = this DPU's run dir)
  ovs_fresh "$dpu"

  # ---- sshd
  ssh-keygen -q -t ed25519 -N '' -C "dpuo-dpu-$dpu" -f "$dir/ssh/ssh_host_ed25519_key"
  {
    echo "ListenAddress $(mgmt_dpu_ip "$i")"
    echo "Port 22"
    echo "HostKey \"$dir/ssh/ssh_host_ed25519_key\""
    echo "PidFile \"$dir/sshd.pid\""
    echo "AuthorizedKeysFile \"$STATE/authorized_keys\""
    echo "PermitRootLogin prohibit-password"
    echo "PubkeyAuthentication yes"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UsePAM $SSHD_USEPAM"
    echo "StrictModes no"
    echo "PrintMotd no"
    echo "PrintLastLog no"
    echo "UseDNS no"
    echo "X11Forwarding no"
    echo "Subsystem sftp internal-sftp"
    echo "MaxStartups 200:30:300"
    echo "MaxSessions 100"
    # sntrup761 costs ~90 ms of CPU per handshake on each side; the
    # plugin's ssh2 client does not use it anyway
    echo "KexAlgorithms -sntrup761x25519-sha512*"
    echo "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    [[ $SSHD_PENALTIES == yes ]] && echo "PerSourcePenalties no"
  } >"$dir/sshd_config"
  sshd_start "$dpu"
}

# ---- DPU daemons (setup_site and dpu-ctl); run in the site's anchor namespaces
dpu_nsx() { # site cmd...
  local apid
  apid=$(pid_from_file "$STATE/dpu-$1/anchor.pid") || { echo "DPU $1: anchor process gone" >&2; return 1; }
  shift
  nsenter -t "$apid" -m -n -u -- "$@"
}

ovsdb_start() {
  local site=$1 dir=$STATE/dpu-$1
  dpu_nsx "$site" ovsdb-server "$dir/db/conf.db" --remote=punix:/var/run/openvswitch/db.sock \
    --pidfile=/var/run/openvswitch/ovsdb-server.pid --detach --no-chdir \
    --log-file="$dir/log/ovsdb-server.log" -vconsole:off \
    </dev/null >/dev/null 2>>"$dir/log/ovsdb-server.log"
}

vswitchd_start() {
  local site=$1 dir=$STATE/dpu-$1
  dpu_nsx "$site" ovs-vswitchd unix:/var/run/openvswitch/db.sock \
    --pidfile=/var/run/openvswitch/ovs-vswitchd.pid --detach --no-chdir \
    --log-file="$dir/log/ovs-vswitchd.log" -vconsole:off \
    </dev/null >/dev/null 2>>"$dir/log/ovs-vswitchd.log"
}

# stop the daemon of a pid file
daemon_stop() {
  local p
  p=$(pid_from_file "$1") || return 0
  terminate "$p"
}

# a new OVS database with only the uplink bridge, both daemons (re)started, VTEP address on br-phy
ovs_fresh() {
  local site=$1 dir=$STATE/dpu-$1 i
  i=$(dpu_index "$site")
  daemon_stop "$dir/run/ovs-vswitchd.pid"
  daemon_stop "$dir/run/ovsdb-server.pid"
  rm -f -- "$dir/db/conf.db"
  ovsdb-tool create "$dir/db/conf.db" "$OVS_SCHEMA"
  ovsdb_start "$site"
  dpu_nsx "$site" ovs-vsctl --timeout=10 --no-wait -- init \
    -- add-br br-phy -- set bridge br-phy datapath_type=netdev "other_config:hwaddr=\"$(p0_mac "$i")\"" \
    -- add-port br-phy p0
  vswitchd_start "$site"
  local w=500 dns
  dns=$(dpu_ns "$site")
  until ip -n "$dns" link show br-phy >/dev/null 2>&1; do
    ((w-- > 0)) || { echo "br-phy did not appear on DPU $site" >&2; return 1; }
    sleep 0.01
  done
  # shellcheck disable=SC2046 # vtep_cidr is "addr/len [nodad]"
  ip -n "$dns" addr replace $(vtep_cidr "$i") dev br-phy
  ip -n "$dns" link set br-phy up
  ((OVN == 0)) || ovn_dpu_config "$site"
}

# ---- OVN on a DPU (--ovn): the chassis keys a real DPU gets from install.sh --dpu --ovn, and br-int
ovn_dpu_config() {
  local dpu=$1 i
  i=$(dpu_index "$dpu")
  dpu_nsx "$dpu" ovs-vsctl --timeout=10 -- set Open_vSwitch . \
    "external_ids:system-id=$(system_id "$dpu")" \
    "external_ids:ovn-remote=tcp:$(ovn_remote_ip):6642" \
    external_ids:ovn-encap-type=geneve \
    "external_ids:ovn-encap-ip=$(vtep_ip "$i")" \
    external_ids:ovn-bridge-datapath-type=netdev \
    "external_ids:ovn-nb=tcp:$(ovn_remote_ip):6641" \
    external_ids:ovn-monitor-all=true \
    -- --may-exist add-br br-int \
    -- set Bridge br-int datapath_type=netdev fail_mode=secure other_config:disable-in-band=true
}

# ovn-controller in the DPU's anchor namespace: its run dir (pid file, ctl socket) is the DPU's
# /var/run/ovn, so ovn-appctl -t ovn-controller works in a DPU SSH session as on a real DPU
ovn_controller_start() {
  local dpu=$1 dir=$STATE/dpu-$1
  pid_from_file "$dir/ovn/ovn-controller.pid" >/dev/null && return 0
  dpu_nsx "$dpu" ovn-controller unix:/var/run/openvswitch/db.sock \
    --pidfile=/var/run/ovn/ovn-controller.pid --detach --no-chdir \
    --log-file="$dir/log/ovn-controller.log" -vconsole:off \
    </dev/null >/dev/null 2>>"$dir/log/ovn-controller.log"
}

# ---- OVN central (--ovn): NB and SB ovsdb-servers and ovn-northd in netns $OVN_NS on the underlay
ovn_db_start() { # nb|sb
  local db=$1 port=6641 o=$STATE/ovn
  [[ $db == nb ]] || port=6642
  pid_from_file "$o/run/ovn${db}_db.pid" >/dev/null && return 0
  ip netns exec "$OVN_NS" ovsdb-server "$o/db/ovn${db}_db.db" \
    --remote="punix:$o/run/ovn${db}_db.sock" --remote="ptcp:$port:$(ovn_remote_ip)" \
    --pidfile="$o/run/ovn${db}_db.pid" --unixctl="$o/run/ovn${db}_db.ctl" \
    --log-file="$o/log/ovsdb-server-$db.log" -vconsole:off --detach --no-chdir \
    </dev/null >/dev/null 2>>"$o/log/ovsdb-server-$db.log"
}

ovn_northd_start() {
  local o=$STATE/ovn
  pid_from_file "$o/run/ovn-northd.pid" >/dev/null && return 0
  OVN_RUNDIR=$o/run ip netns exec "$OVN_NS" ovn-northd \
    --ovnnb-db="unix:$o/run/ovnnb_db.sock" --ovnsb-db="unix:$o/run/ovnsb_db.sock" \
    --pidfile="$o/run/ovn-northd.pid" --unixctl="$o/run/ovn-northd.ctl" \
    --log-file="$o/log/ovn-northd.log" -vconsole:off --detach --no-chdir \
    </dev/null >/dev/null 2>>"$o/log/ovn-northd.log"
}

setup_ovn_central() {
  local o=$STATE/ovn
  mkdir -p "$o/run" "$o/db" "$o/log"
  ip netns add "$OVN_NS"
  ip link add ovn0 netns "$OVN_NS" type veth peer name p0-ovn netns "$UNDERLAY_NS"
  ip -n "$UNDERLAY_NS" link set p0-ovn master br-ul up
  ip -n "$OVN_NS" -batch - <<EOF
link set lo up
addr add $OVN_IP/$([[ $UNDERLAY == ipv6 ]] && echo '64 nodad' || echo 24) dev ovn0
link set ovn0 up
EOF
  # the DPUs' userspace datapath does not fill in checksums of offloaded packets
  ip netns exec "$OVN_NS" ethtool -K ovn0 tx off >/dev/null
  ip netns exec "$UNDERLAY_NS" ethtool -K p0-ovn tx off >/dev/null
  # nb-block/nb-unblock flip this rule's verdict
  ip netns exec "$OVN_NS" nft -f - <<'EOF'
table inet dpuo {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 6641 counter accept comment "nb"
  }
}
EOF
  ovsdb-tool create "$o/db/ovnnb_db.db" "$OVN_NB_SCHEMA"
  ovsdb-tool create "$o/db/ovnsb_db.db" "$OVN_SB_SCHEMA"
  ovn_db_start nb
  ovn_db_start sb
  ovn-nbctl --db="unix:$o/run/ovnnb_db.sock" --timeout=10 init
  ovn-sbctl --db="unix:$o/run/ovnsb_db.sock" --timeout=10 init
  ovn_northd_start
}

# processes of the central: pid files, and whatever else still lives in its netns (all ours)
kill_ovn_central() {
  local pids=() p f
  for f in "$STATE"/ovn/run/*.pid; do
    p=$(pid_from_file "$f") && pids+=("$p")
  done
  if [[ -e /run/netns/$OVN_NS ]]; then
    for p in /proc/[0-9]*; do
      [[ $p/ns/net -ef /run/netns/$OVN_NS ]] && alive "${p#/proc/}" && pids+=("${p#/proc/}")
    done
  fi
  terminate "${pids[@]}"
}

# up --ovn returns once every DPU's ovn-controller has registered its chassis in the SB
ovn_wait_chassis() {
  local want=$# got n=1000 d
  while ((n-- > 0)); do
    got=$(ovn-sbctl --db="unix:$STATE/ovn/run/ovnsb_db.sock" --timeout=5 --bare --columns=name list Chassis 2>/dev/null | grep -c . || true)
    ((got < want)) || return 0
    sleep 0.02
  done
  for d in "$@"; do msg "DPU $d: see $STATE/dpu-$d/log/ovn-controller.log"; done
  msg "only $got of $want ovn-controllers registered with the OVN central within 20 s"
  return 1
}

cmd_ovn_ctl() {
  (($# == 1)) || die "usage: $PROG ovn-ctl nb-stop|nb-start|nb-block|nb-unblock|sb-stop|sb-start|northd-stop|northd-start"
  read_config || die "testbed is not up; run: $PROG up --ovn"
  ((OVN)) || die "the testbed is up without OVN; run: $PROG up --ovn"
  local o=$STATE/ovn handle
  case $1 in
    nb-stop) daemon_stop "$o/run/ovnnb_db.pid" ;;
    nb-start) ovn_db_start nb ;;
    sb-stop) daemon_stop "$o/run/ovnsb_db.pid" ;;
    sb-start) ovn_db_start sb ;;
    northd-stop) daemon_stop "$o/run/ovn-northd.pid" ;;
    northd-start) ovn_northd_start ;;
    nb-block | nb-unblock)
      handle=$(ip netns exec "$OVN_NS" nft -a list chain inet dpuo input | sed -n 's/.*comment "nb" # handle \([0-9]*\)$/\1/p')
      [[ -n $handle ]] || die "the central's nb rule is missing; run: $PROG up --ovn"
      local verdict=accept
      [[ $1 == nb-unblock ]] || verdict=drop
      ip netns exec "$OVN_NS" nft replace rule inet dpuo input handle "$handle" tcp dport 6641 counter "$verdict" comment '"nb"'
      ;;
    *) die "unknown ovn-ctl action '$1' (nb-stop|nb-start|nb-block|nb-unblock|sb-stop|sb-start|northd-stop|northd-start)" ;;
  esac
}

cmd_ovn_tool() { # ovn-nbctl|ovn-sbctl args...
  local tool=$1 db=nb
  shift
  read_config || die "testbed is not up; run: $PROG up --ovn"
  ((OVN)) || die "the testbed is up without OVN; run: $PROG up --ovn"
  [[ $tool == ovn-nbctl ]] || db=sb
  exec "$tool" --db="unix:$STATE/ovn/run/ovn${db}_db.sock" --timeout=10 "$@"
}

sshd_start() {
  local site=$1 dir=$STATE/dpu-$1
  rm -f -- "$dir/sshd.pid"
  dpu_nsx "$site" "$SSHD" -f "$dir/sshd_config" -E "$dir/log/sshd.log" </dev/null >/dev/null 2>>"$dir/log/sshd.log"
  wait_for_file "$dir/sshd.pid" 500 || {
    cat "$dir/log/sshd.log" >&2
    echo "sshd for DPU $site did not start" >&2
    return 1
  }
}

# fault injection for tests: stop/start the DPU's sshd, restart ovs-vswitchd, reset the OVS database
# every sshd left in DPU $1's anchor mount namespace (the sessions of a stopped sshd)
ssh_sessions_stop() {
  local apid p comm pids=()
  apid=$(anchor_pid "$1") || return 0
  for p in /proc/[0-9]*; do
    [[ $p/ns/mnt -ef /proc/$apid/ns/mnt ]] || continue
    read -r comm 2>/dev/null <"$p/comm" || continue
    [[ $comm == sshd ]] && pids+=("${p#/proc/}")
  done
  terminate "${pids[@]}"
}

cmd_dpu_ctl() {
  (($# == 2)) || die "usage: $PROG dpu-ctl <dpu> sshd-stop|sshd-start|vswitchd-restart|db-reset|ovs-stop|ovn-controller-stop|ovn-controller-start|ovn-controller-restart"
  local site=$1 action=$2 dir
  read_config || die "testbed is not up; run: $PROG up"
  [[ " $(all_dpus) " == *" $site "* ]] || die "unknown DPU '$site' (DPUs: $(all_dpus))"
  anchor_pid "$site" >/dev/null || die "DPU $site is not running (anchor process gone); run: $PROG up"
  dir=$STATE/dpu-$site
  case $action in
    sshd-stop) # a DPU that stops answering SSH: its open sessions (a host daemon's connection) end too
      daemon_stop "$dir/sshd.pid"
      ssh_sessions_stop "$site" ;;
    sshd-start) pid_from_file "$dir/sshd.pid" >/dev/null || sshd_start "$site" ;;
    vswitchd-restart)
      daemon_stop "$dir/run/ovs-vswitchd.pid"
      vswitchd_start "$site"
      # the userspace datapath recreates br-phy: give it its VTEP address back
      local w=500 dns
      dns=$(dpu_ns "$site")
      until ip -n "$dns" link show br-phy >/dev/null 2>&1; do
        ((w-- > 0)) || die "br-phy did not come back on DPU $site"
        sleep 0.01
      done
      # shellcheck disable=SC2046
      ip -n "$dns" addr replace $(vtep_cidr "$(dpu_index "$site")") dev br-phy
      ip -n "$dns" link set br-phy up
      ;;
    db-reset) ovs_fresh "$site" ;;
    ovs-stop)
      daemon_stop "$dir/run/ovs-vswitchd.pid"
      daemon_stop "$dir/run/ovsdb-server.pid"
      ;;
    ovn-controller-*)
      ((OVN)) || die "the testbed is up without OVN; run: $PROG up --ovn"
      case ${action#ovn-controller-} in
        stop) daemon_stop "$dir/ovn/ovn-controller.pid" ;;
        start) ovn_controller_start "$site" ;;
        restart) daemon_stop "$dir/ovn/ovn-controller.pid"; ovn_controller_start "$site" ;;
        *) die "unknown dpu-ctl action '$action' (ovn-controller-stop|-start|-restart)" ;;
      esac
      ;;
    *) die "unknown dpu-ctl action '$action' (sshd-stop|sshd-start|vswitchd-restart|db-reset|ovs-stop|ovn-controller-stop|-start|-restart)" ;;
  esac
}

cmd_up() {
  local sites_arg=$DEFAULT_SITES vfs=$DEFAULT_VFS pfs=1
  while (($#)); do
    case $1 in
      --sites) (($# >= 2)) || die "--sites needs a value"; sites_arg=$2; shift 2 ;;
      --sites=*) sites_arg=${1#*=}; shift ;;
      --vfs) (($# >= 2)) || die "--vfs needs a value"; vfs=$2; shift 2 ;;
      --vfs=*) vfs=${1#*=}; shift ;;
      --pfs) (($# >= 2)) || die "--pfs needs a value"; pfs=$2; shift 2 ;;
      --pfs=*) pfs=${1#*=}; shift ;;
      --ovn) OVN=1; shift ;;
      --underlay) (($# >= 2)) || die "--underlay needs a value"; UNDERLAY=$2; shift 2 ;;
      --underlay=*) UNDERLAY=${1#*=}; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage; die "unknown option for up: $1" ;;
    esac
  done
  [[ $vfs =~ ^[0-9]+$ ]] && ((vfs >= 1 && vfs <= MAX_VFS)) || die "--vfs must be 1..$MAX_VFS"
  [[ $pfs =~ ^[0-9]+$ ]] && ((pfs >= 1 && pfs <= MAX_PFS)) || die "--pfs must be 1..$MAX_PFS"
  [[ $UNDERLAY == ipv4 || $UNDERLAY == ipv6 ]] || die "--underlay must be ipv4 or ipv6"
  set_ovn_ip
  local sites=() s seen=,
  IFS=',' read -r -a sites <<<"$sites_arg"
  ((${#sites[@]})) || die "--sites is empty"
  for s in "${sites[@]}"; do
    [[ $s =~ ^[a-z]$ ]] || die "site names must be single letters a-z (got '$s')"
    [[ $seen != *",$s,"* ]] || die "duplicate site '$s'"
    seen+="$s,"
  done
  require_tools

  lock
  # rebuild if anything is up
  if leftovers_present; then
    msg "testbed (or leftovers) present: tearing down first"
    do_down
  fi

  mkdir -p "$STATE" /run/sshd /run/openvswitch
  ((OVN == 0)) || mkdir -p /run/ovn
  chmod 0755 /run/sshd
  : >"$STATE/$MARKER"

  # client key, used by the plugin
  ssh-keygen -q -t ed25519 -N '' -C dpuo-testbed-client -f "$STATE/id_ed25519"
  chmod 0600 "$STATE/id_ed25519"
  if ((OVN)); then
    # as install.sh --dpu --ovn writes it: the plugin's key reaches the DPU only through the guard
    printf 'command="%s --ovn",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s\n' \
      "$(dirname "$(dirname "$TESTKIT")")/guard/dpu-guard.sh" "$(cat "$STATE/id_ed25519.pub")" >"$STATE/authorized_keys"
  else
    cp "$STATE/id_ed25519.pub" "$STATE/authorized_keys"
  fi

  # sshd feature checks (once)
  SSHD_PENALTIES=no
  if "$SSHD" -T -f /dev/null -h "$STATE/id_ed25519" -o PerSourcePenalties=no >/dev/null 2>&1; then
    SSHD_PENALTIES=yes
  fi
  # without PAM, OpenSSH refuses accounts whose password starts with '!'
  SSHD_USEPAM=no
  if [[ $(getent shadow root 2>/dev/null | cut -d: -f2) == '!'* ]]; then
    SSHD_USEPAM=yes
  fi

  # host PF: dummy if available, ifb otherwise (same look: a lone netdev)
  local pf_kind=dummy
  ip netns add "$UNDERLAY_NS"
  if ! ip -n "$UNDERLAY_NS" link add dpuo-probe type dummy 2>/dev/null; then
    pf_kind=ifb
  else
    ip -n "$UNDERLAY_NS" link del dpuo-probe
  fi
  ip -n "$UNDERLAY_NS" -batch - <<EOF
link set lo up
link add br-ul type bridge stp_state 0 forward_delay 0 mcast_snooping 0
link set br-ul up
EOF

  build_sysfs "$STATE/sysfs-template" "$vfs" "$pfs"

  # the central comes up alongside the sites; the ovn-controllers start once both are done
  local central_pid=
  if ((OVN)); then
    setup_ovn_central >"$STATE/setup-ovn.log" 2>&1 9<&- &
    central_pid=$!
  fi
  local pids=() failed=0 k
  for s in "${sites[@]}"; do
    setup_site "$s" "$vfs" "$pf_kind" "$pfs" >"$STATE/setup-$s.log" 2>&1 9<&- &
    pids+=($!)
  done
  for k in "${!sites[@]}"; do
    if ! wait "${pids[$k]}"; then
      failed=1
      msg "setup of site ${sites[$k]} failed:"
      sed 's/^/  /' "$STATE/setup-${sites[$k]}.log" >&2
    fi
  done
  rm -rf -- "$STATE/sysfs-template"
  if [[ -n $central_pid ]] && ! wait "$central_pid"; then
    failed=1
    msg "setup of the OVN central failed:"
    sed 's/^/  /' "$STATE/setup-ovn.log" >&2
  fi
  if ((failed)); then
    msg "tearing down after failure"
    do_down
    exit 1
  fi
  rm -f -- "$STATE"/setup-*.log

  # known_hosts: one plain line per DPU
  : >"$STATE/known_hosts"
  local kt kb d
  SITES=("${sites[@]}") PFS=$pfs
  for d in $(all_dpus); do
    read -r kt kb _ <"$STATE/dpu-$d/ssh/ssh_host_ed25519_key.pub"
    echo "$(mgmt_dpu_ip "$(dpu_index "$d")") $kt $kb" >>"$STATE/known_hosts"
  done

  if ((OVN)); then
    pids=()
    for d in $(all_dpus); do
      ovn_controller_start "$d" 9<&- &
      pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || failed=1; done
  fi
  if ((OVN)) && { ((failed)) || ! ovn_wait_chassis $(all_dpus); }; then
    msg "tearing down after failure"
    do_down
    exit 1
  fi

  local IFS=,
  printf 'sites=%s\nvfs=%s\npfs=%s\novn=%s\nunderlay=%s\n' "${sites[*]}" "$vfs" "$pfs" "$OVN" "$UNDERLAY" >"$STATE/config"
  local with=
  ((OVN == 0)) || with=", OVN central $OVN_IP in netns $OVN_NS"
  msg "testbed up: sites ${sites[*]}, $pfs PF(s) with $vfs VFs each$with, state in $STATE"
}

# ---------------------------------------------------------------- env/status
json_str() { # minimal JSON string escaping
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# JSON members (no braces) describing PF number $2 of site $1 and its DPU
pf_json() {
  local s=$1 p=$2 d i r n rf=1 out
  d=$(dpu_of "$s" "$p")
  i=$(dpu_index "$d")
  out="\"pf\":\"$(pf_name "$p")\",\"pfPci\":\"$(pf_pci "$p")\",\"dpu\":\"$d\",\"dpuNetns\":\"$(dpu_ns "$d")\""
  out+=",\"dpuHost\":\"$(mgmt_dpu_ip "$i")\",\"dpuPort\":22,\"dpuUser\":\"root\""
  out+=",\"localVtep\":\"$(vtep_ip "$i")\",\"remoteVteps\":["
  for r in $(all_dpus); do
    [[ $r == "$d" ]] && continue
    ((rf)) || out+=","
    rf=0
    out+="\"$(vtep_ip "$(dpu_index "$r")")\""
  done
  out+="]"
  ((OVN == 0)) || out+=",\"ovnSystemId\":\"$(system_id "$d")\""
  out+=",\"vfs\":["
  for ((n = 0; n < VFS; n++)); do
    ((n == 0)) || out+=","
    out+="{\"index\":$n,\"pci\":\"$(vf_pci "$n" "$p")\",\"netdev\":\"ens1f${p}v$n\",\"mac\":\"$(vf_mac "$i" "$n")\",\"representor\":\"pf${p}vf$n\"}"
  done
  out+="]"
  printf '%s' "$out"
}

cmd_env() {
  read_config || die "testbed is not up (no $STATE/config); run: $PROG up"
  local s ns d
  for s in "${SITES[@]}"; do
    ns_exists "$(host_ns "$s")" || die "testbed is broken: netns $(host_ns "$s") is missing; run: $PROG up"
  done
  for d in $(all_dpus); do
    ns_exists "$(dpu_ns "$d")" || die "testbed is broken: netns $(dpu_ns "$d") is missing; run: $PROG up"
  done
  local out first p
  out="{\"underlay\":\"$UNDERLAY\",\"stateDir\":$(json_str "$STATE"),\"privateKeyFile\":$(json_str "$STATE/id_ed25519"),\"knownHostsFile\":$(json_str "$STATE/known_hosts"),\"sites\":["
  first=1
  for s in "${SITES[@]}"; do
    ((first)) || out+=","
    first=0
    # the first PF's members at the top, every PF (with its DPU) in "pfs"
    out+="{\"name\":\"$s\",\"hostNetns\":\"$(host_ns "$s")\",\"daemonSocket\":$(json_str "$(daemon_socket "$s")"),\"sysfsRoot\":$(json_str "$STATE/host-$s/sys"),$(pf_json "$s" 0),\"pfs\":["
    for ((p = 0; p < PFS; p++)); do
      ((p == 0)) || out+=","
      out+="{$(pf_json "$s" "$p")}"
    done
    out+="]}"
  done
  out+="]"
  if ((OVN)); then
    local o=$STATE/ovn/run
    out+=",\"ovn\":{\"netns\":\"$OVN_NS\",\"address\":\"$OVN_IP\",\"nb\":\"tcp:$(ovn_remote_ip):6641\",\"sb\":\"tcp:$(ovn_remote_ip):6642\""
    out+=",\"nbSocket\":$(json_str "unix:$o/ovnnb_db.sock"),\"sbSocket\":$(json_str "unix:$o/ovnsb_db.sock"),\"encapType\":\"geneve\"}"
  fi
  out+="}"
  printf '%s\n' "$out"
}

cmd_status() {
  if ! read_config; then
    if leftovers_present; then
      echo "testbed: down, but leftovers exist (run '$PROG down')"
      exit 1
    fi
    echo "testbed: down"
    exit 3
  fi
  local ok=1 s d i p p2 name f state
  echo "testbed: up (state dir $STATE, $PFS PF(s) with $VFS VFs per site)"
  ns_exists "$UNDERLAY_NS" || { ok=0; echo "  underlay netns $UNDERLAY_NS: MISSING"; }
  for s in "${SITES[@]}"; do
    ns_exists "$(host_ns "$s")" || { ok=0; echo "  site $s: netns:$(host_ns "$s")=MISSING"; }
    for ((p = 0; p < PFS; p++)); do
      d=$(dpu_of "$s" "$p")
      i=$(dpu_index "$d")
      local line="  site $s pf $(pf_name "$p"): dpu $d $(mgmt_dpu_ip "$i") vtep $(vtep_ip "$i")"
      f=$(dpu_ns "$d")
      ns_exists "$f" || { ok=0; line+=" netns:$f=MISSING"; }
      local names=(anchor:anchor.pid ovsdb-server:run/ovsdb-server.pid ovs-vswitchd:run/ovs-vswitchd.pid sshd:sshd.pid)
      ((OVN == 0)) || names+=(ovn-controller:ovn/ovn-controller.pid)
      for name in "${names[@]}"; do
        if p2=$(pid_from_file "$STATE/dpu-$d/${name#*:}"); then
          state="${name%%:*}=$p2"
        else
          state="${name%%:*}=DEAD"
          ok=0
        fi
        line+=" $state"
      done
      echo "$line"
    done
  done
  if ((OVN)); then
    local line="  ovn central $OVN_IP:"
    ns_exists "$OVN_NS" || { ok=0; line+=" netns:$OVN_NS=MISSING"; }
    for name in nb:ovnnb_db.pid sb:ovnsb_db.pid ovn-northd:ovn-northd.pid; do
      if p2=$(pid_from_file "$STATE/ovn/run/${name#*:}"); then line+=" ${name%%:*}=$p2"; else line+=" ${name%%:*}=DEAD"; ok=0; fi
    done
    echo "$line"
  fi
  ((ok)) && exit 0
  echo "testbed: DEGRADED (run '$PROG up' to rebuild)"
  exit 1
}

cmd_dpu_exec() {
  (($# >= 2)) || die "usage: $PROG dpu-exec <site> <cmd...>"
  local site=$1 apid
  shift
  read_config || die "testbed is not up; run: $PROG up"
  [[ " $(all_dpus) " == *" $site "* ]] || die "unknown DPU '$site' (DPUs: $(all_dpus))"
  apid=$(anchor_pid "$site") || die "DPU $site is not running (anchor process gone); run: $PROG up"
  exec nsenter -t "$apid" -m -n -u -- "$@"
}

# ---------------------------------------------------------------- main
(($#)) || { usage; exit 2; }
cmd=$1
shift
case $cmd in
  up) cmd_up "$@" ;;
  down) (($# == 0)) || die "down takes no arguments"; cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  dpu-exec) cmd_dpu_exec "$@" ;;
  dpu-ctl) cmd_dpu_ctl "$@" ;;
  ovn-ctl) cmd_ovn_ctl "$@" ;;
  ovn-nbctl | ovn-sbctl) cmd_ovn_tool "$cmd" "$@" ;;
  daemon-start) cmd_daemon start "$@" ;;
  daemon-stop) cmd_daemon stop "$@" ;;
  -h | --help | help) usage ;;
  *) usage; die "unknown command: $cmd" ;;
esac
