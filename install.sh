#!/usr/bin/env bash
# install.sh: set up dpu-overlay.
#
#   ./install.sh [--no-apt] [--no-build] [--cni-bin-dir DIR]       on a host (Debian 12, root; Node 20 to build)
#   ./install.sh --dev [...]                                         also what the tests, demo and benchmarks need
#   ./install.sh --dpu [--authorize-key FILE.pub] [...]              on a BlueField DPU (root)
#   ./install.sh --dpu --ovn --ovn-remote R --ovn-nb R --encap-ip IP  ... and make it an OVN chassis
#   ./install.sh --ovn-central --listen IP                            a lab OVN central (NB, SB, northd)
#
# Idempotent: re-running skips what is already in place. See --help and docs/install.md.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
PROG=install.sh

# Debian packages the plugin needs at run time: ip (iproute2), nsenter (util-linux), the reference
# plugins it chains (containernetworking-plugins), and ssh-keygen/ssh-keyscan to set up the DPU key.
RUNTIME_PACKAGES=(iproute2 util-linux containernetworking-plugins openssh-client)
# --dev: what the emulated testbed, the tests, the demo and the benchmarks add (the tests start their own
# OVS instances and sshds, so the distro's openvswitch-switch service is not wanted). The runtime
# tests drive podman (with runc), containerd and a libcni driver built offline with golang-go.
DEV_PACKAGES=(openvswitch-switch openssh-server iperf3 ethtool nftables iputils-ping procps
  podman runc containerd busybox-static golang-go golang-github-appc-cni-dev
  stress sysstat linux-perf time ovn-central ovn-host)
# OVN's units (Debian ships only systemd units for them): the testbed runs its own central and one
# ovn-controller per emulated DPU, so none of these may run in the root namespace.
OVN_UNITS=(ovn-controller ovn-host ovn-northd ovn-ovsdb-server-nb ovn-ovsdb-server-sb ovn-central)
OVN_PACKAGES=(ovn-central ovn-host)
# What `npm run build` compiles the daemon's in-process netlink addon (native/rtnetlink) with, beside Node's own
# headers (<node prefix>/include/node, or /usr/include/node from Debian's or NodeSource's nodejs).
BUILD_PACKAGES=(gcc libc6-dev)
# Reference plugins the example conflist (cni-conf/) chains; Debian installs them in /usr/lib/cni.
REFERENCE_PLUGINS=(host-local tuning)
REFERENCE_PLUGIN_DIR=/usr/lib/cni

# The per-node file's directory (the plugin's nodeConfig default is $NODE_DIR/node.json); this script only
# ever writes the example next to it, never node.json itself.
NODE_DIR=/etc/cni/dpu-overlay
NODE_EXAMPLE=node.json.example

SYSTEMD_UNIT_DIR=/etc/systemd/system
DAEMON_UNIT=dpu-overlay.service

GUARD_DIR=/usr/local/libexec/dpu-overlay
GUARD=$GUARD_DIR/dpu-guard
KEY_OPTIONS='no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding'

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
msg() { printf '%s: %s\n' "$PROG" "$*" >&2; }
step() { printf '\n==> %s\n' "$*" >&2; }

usage() {
  cat <<EOF
usage: $PROG [--dev] [--no-apt] [--no-build] [--cni-bin-dir DIR] [--no-daemon-unit]
       $PROG --dpu [--authorize-key FILE.pub] [--authorized-keys FILE]
                   [--bridge-prefix P] [--representor-template T]
                   [--ovn --ovn-remote R --ovn-nb R --encap-ip IP [--ovn-nb-ssl KEY CERT CA]
                    [--encap-type geneve|vxlan] [--system-id ID] [--bridge-datapath-type system|netdev]
                    [--ovn-switch-prefix P]]
       $PROG --ovn-central --listen IP

Host mode (default): installs the Debian packages the plugin needs at run time
(${RUNTIME_PACKAGES[*]}; to build also ${BUILD_PACKAGES[*]}), runs npm ci and npm run build (Node.js 20),
installs dist/dpu-overlay into the CNI bin dir (also linking ${REFERENCE_PLUGINS[*]}
from $REFERENCE_PLUGIN_DIR there if missing), writes the daemon unit and
$NODE_DIR/$NODE_EXAMPLE (never $NODE_DIR/node.json).
  --dev               also the packages for the emulated testbed, tests, demo and benchmarks
                      (${DEV_PACKAGES[*]});
                      stops and disables the distro's openvswitch-switch service and OVN units if this
                      run installed them (with systemd, OVN installs under a policy-rc.d refusing starts)
  --no-apt            do not install Debian packages
  --no-build          no npm ci / npm run build: install the existing dist/dpu-overlay
                      (no Node.js and no compiler needed on this host)
  --cni-bin-dir DIR   where the runtime looks for CNI plugins (default /opt/cni/bin)
  --no-daemon-unit    do not write $SYSTEMD_UNIT_DIR/$DAEMON_UNIT (the warm DPU channel,
                      "dpu-overlay daemon"; enabled and started only where systemd runs)

DPU mode (--dpu, run on the BlueField Arm cores): installs the SSH forced-command guard
(guard/dpu-guard.sh) as $GUARD and prints the authorized_keys line
that restricts the plugin's key to the commands the plugin sends.
  --authorize-key FILE.pub   also put that line, for this public key, in root's authorized_keys
                             (an existing unrestricted entry for the same key is replaced)
  --authorized-keys FILE     use FILE instead of ~root/.ssh/authorized_keys
  --guard-dir DIR            install the guard into DIR instead of $GUARD_DIR (an absolute path only root
                             can write; tests give each emulated site its own)
  --bridge-prefix P          the plugin's dpu.bridgePrefix if not br-vni (repeatable)
  --representor-template T   the plugin's dpu.representorTemplate if not pf{pf}vf{vf} (repeatable)

  OVN chassis (dpu.controlPlane "ovn"; needs ovn-host on the DPU): sets the DPU's Open_vSwitch
  external_ids and starts ovn-controller
  --ovn                      turn this on; then --ovn-remote, --ovn-nb and --encap-ip are required
  --ovn-remote R             the southbound DB as the DPU reaches it, e.g. tcp:10.0.0.5:6642 (or ssl:...,
                             a comma list for a clustered SB)
  --ovn-nb R                 the northbound DB as the DPU reaches it (the plugin's writes go there)
  --ovn-nb-ssl KEY CERT CA   private key, certificate and CA for an ssl: --ovn-nb
  --ovn-switch-prefix P      the plugin's dpu.ovn.switchPrefix when not "vni" (repeatable); written into the
                             guard's command= with --ovn
  --encap-ip IP              this DPU's tunnel endpoint (VTEP) address
  --encap-type geneve|vxlan  default geneve (vxlan: at most 4096 networks and 2048 ports per network,
                             the wire VNI is not the network's VNI, and it applies to the whole cluster)
  --system-id ID             the chassis name (default: the one already set, else dpuo-<random uuid>);
                             must never equal any chassis's hostname
  --bridge-datapath-type T   br-int's datapath: system (default) or netdev (OVS-DOCA)

Lab central (--ovn-central, one machine; production runs OVN's clustered databases, see docs/install.md):
  --listen IP                the address NB (tcp 6641) and SB (tcp 6642) listen on, without TLS

  -h, --help          this text
EOF
}

# ---------------------------------------------------------------- options
MODE=host DEV=0 APT=1 BUILD=1 DAEMON_UNIT_WANTED=1 CNI_BIN_DIR=/opt/cni/bin
AUTHORIZE_KEY= AUTHORIZED_KEYS= GUARD_ARGS=() GUARD_DIR_SET=0
OVN=0 OVN_PREFIXES=() OVN_REMOTE= OVN_NB= OVN_NB_SSL=() ENCAP_IP= ENCAP_TYPE=geneve SYSTEM_ID= BRIDGE_DP_TYPE=system LISTEN=
while (($#)); do
  case $1 in
    --dpu) [[ $MODE != central ]] || die "--dpu and --ovn-central are two different machines: choose one"; MODE=dpu ;;
    --dev) DEV=1 ;;
    --no-apt) APT=0 ;;
    --no-build) BUILD=0 ;;
    --no-daemon-unit) DAEMON_UNIT_WANTED=0 ;;
    --cni-bin-dir) (($# >= 2)) || die "--cni-bin-dir needs a directory"; CNI_BIN_DIR=$2; shift ;;
    --cni-bin-dir=*) CNI_BIN_DIR=${1#*=} ;;
    --authorize-key) (($# >= 2)) || die "--authorize-key needs a .pub file"; AUTHORIZE_KEY=$2; shift ;;
    --authorize-key=*) AUTHORIZE_KEY=${1#*=} ;;
    --guard-dir) (($# >= 2)) || die "--guard-dir needs an absolute directory"; GUARD_DIR=$2; GUARD=$GUARD_DIR/dpu-guard; GUARD_DIR_SET=1; shift ;;
    --guard-dir=*) GUARD_DIR=${1#*=}; GUARD=$GUARD_DIR/dpu-guard; GUARD_DIR_SET=1 ;;
    --authorized-keys) (($# >= 2)) || die "--authorized-keys needs a file"; AUTHORIZED_KEYS=$2; shift ;;
    --authorized-keys=*) AUTHORIZED_KEYS=${1#*=} ;;
    --bridge-prefix) (($# >= 2)) || die "--bridge-prefix needs a value"; GUARD_ARGS+=(--bridge-prefix "$2"); shift ;;
    --bridge-prefix=*) GUARD_ARGS+=(--bridge-prefix "${1#*=}") ;;
    --representor-template) (($# >= 2)) || die "--representor-template needs a value"; GUARD_ARGS+=(--representor-template "$2"); shift ;;
    --representor-template=*) GUARD_ARGS+=(--representor-template "${1#*=}") ;;
    --ovn) OVN=1 ;;
    --ovn-central) [[ $MODE != dpu ]] || die "--dpu and --ovn-central are two different machines: choose one"; MODE=central ;;
    --ovn-remote) (($# >= 2)) || die "--ovn-remote needs a value"; OVN_REMOTE=$2; shift ;;
    --ovn-nb) (($# >= 2)) || die "--ovn-nb needs a value"; OVN_NB=$2; shift ;;
    --ovn-nb-ssl) (($# >= 4)) || die "--ovn-nb-ssl needs KEY CERT CA"; OVN_NB_SSL=("$2" "$3" "$4"); shift 3 ;;
    --encap-ip) (($# >= 2)) || die "--encap-ip needs an address"; ENCAP_IP=$2; shift ;;
    --encap-type) (($# >= 2)) || die "--encap-type needs geneve or vxlan"; ENCAP_TYPE=$2; shift ;;
    --system-id) (($# >= 2)) || die "--system-id needs a value"; SYSTEM_ID=$2; shift ;;
    --ovn-switch-prefix) (($# >= 2)) || die "--ovn-switch-prefix needs a value"; OVN_PREFIXES+=("$2"); shift ;;
    --ovn-switch-prefix=*) OVN_PREFIXES+=("${1#*=}") ;;
    --bridge-datapath-type) (($# >= 2)) || die "--bridge-datapath-type needs system or netdev"; BRIDGE_DP_TYPE=$2; shift ;;
    --listen) (($# >= 2)) || die "--listen needs an address"; LISTEN=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

if [[ $MODE != dpu ]]; then
  ((OVN == 0)) && [[ -z $OVN_REMOTE$OVN_NB$ENCAP_IP$SYSTEM_ID && ${#OVN_NB_SSL[@]} -eq 0 && ${#OVN_PREFIXES[@]} -eq 0 ]] ||
    die "--ovn, --ovn-remote, --ovn-nb, --ovn-nb-ssl, --encap-ip, --system-id and --ovn-switch-prefix go with --dpu"
fi
if [[ $MODE == central ]]; then
  [[ -z $AUTHORIZE_KEY && -z $AUTHORIZED_KEYS && ${#GUARD_ARGS[@]} -eq 0 ]] ||
    die "--authorize-key, --authorized-keys, --bridge-prefix and --representor-template go with --dpu"
  [[ -n $LISTEN ]] || die "--ovn-central needs --listen IP (the address the DPUs reach the central on)"
  [[ $LISTEN =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "--listen must be an IPv4 address (got '$LISTEN')"
elif [[ -n $LISTEN ]]; then
  die "--listen goes with --ovn-central"
fi
if [[ $MODE == dpu && $OVN == 1 ]]; then
  [[ -n $OVN_REMOTE ]] || die "--ovn needs --ovn-remote (the southbound DB, e.g. tcp:10.0.0.5:6642)"
  [[ -n $OVN_NB ]] || die "--ovn needs --ovn-nb (the northbound DB, e.g. tcp:10.0.0.5:6641)"
  [[ -n $ENCAP_IP ]] || die "--ovn needs --encap-ip (this DPU's tunnel endpoint address)"
  [[ $OVN_REMOTE =~ ^(tcp|ssl):[][0-9A-Za-z.:,_-]+$ ]] || die "--ovn-remote must be tcp:HOST:PORT or ssl:HOST:PORT (comma list for a cluster; got '$OVN_REMOTE')"
  [[ $OVN_NB =~ ^(tcp|ssl):[][0-9A-Za-z.:,_-]+$ ]] || die "--ovn-nb must be tcp:HOST:PORT or ssl:HOST:PORT (comma list for a cluster; got '$OVN_NB')"
  [[ $OVN_NB != ssl:* || ${#OVN_NB_SSL[@]} -eq 3 ]] || die "an ssl: --ovn-nb needs --ovn-nb-ssl KEY CERT CA"
  [[ $ENCAP_IP =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$|: ]] || die "--encap-ip must be an IP address (got '$ENCAP_IP')"
  [[ $ENCAP_TYPE == geneve || $ENCAP_TYPE == vxlan ]] || die "--encap-type must be geneve or vxlan (got '$ENCAP_TYPE')"
  [[ $BRIDGE_DP_TYPE == system || $BRIDGE_DP_TYPE == netdev ]] || die "--bridge-datapath-type must be system or netdev (got '$BRIDGE_DP_TYPE')"
  [[ -z $SYSTEM_ID || $SYSTEM_ID =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || die "--system-id must be 1-64 of A-Z a-z 0-9 . _ - (got '$SYSTEM_ID')"
  # the guard allows OVN shapes only with --ovn in the key's command=; it checks the prefixes itself (below)
  GUARD_ARGS+=(--ovn)
  for p in "${OVN_PREFIXES[@]}"; do GUARD_ARGS+=(--ovn-switch-prefix "$p"); done
elif [[ $MODE == dpu ]]; then
  [[ -z $OVN_REMOTE$OVN_NB$ENCAP_IP$SYSTEM_ID && ${#OVN_NB_SSL[@]} -eq 0 && ${#OVN_PREFIXES[@]} -eq 0 ]] ||
    die "--ovn-remote, --ovn-nb, --encap-ip, --system-id, --ovn-nb-ssl and --ovn-switch-prefix need --ovn"
fi

[[ $GUARD_DIR_SET == 0 || $MODE == dpu ]] || die "--guard-dir goes with --dpu"
[[ $GUARD_DIR == /* && $GUARD_DIR != *[[:space:]\"\'\\,]* ]] || die "--guard-dir must be an absolute path without spaces, quotes, backslashes or commas (it goes into authorized_keys; got '$GUARD_DIR')"
if [[ $MODE == host ]]; then
  [[ -z $AUTHORIZE_KEY && -z $AUTHORIZED_KEYS && ${#GUARD_ARGS[@]} -eq 0 ]] ||
    die "--authorize-key, --authorized-keys, --bridge-prefix and --representor-template go with --dpu"
  [[ $CNI_BIN_DIR == /* ]] || die "--cni-bin-dir must be an absolute path (got '$CNI_BIN_DIR')"
else
  ((DEV == 0)) || die "--dev goes with host mode, not --${MODE/central/ovn-central}"
fi

APT_PACKAGES=("${RUNTIME_PACKAGES[@]}")
((BUILD == 0)) || APT_PACKAGES+=("${BUILD_PACKAGES[@]}")
((DEV == 0)) || APT_PACKAGES+=("${DEV_PACKAGES[@]}")

is_root() { [[ $(id -u) == 0 ]]; }

# ---------------------------------------------------------------- host: Debian packages
pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# The distro's OVS (started by the package's postinst) in this mount namespace.
distro_ovs_running() {
  local f pid
  for f in /run/openvswitch/ovsdb-server.pid /run/openvswitch/ovs-vswitchd.pid; do
    [[ -r $f ]] || continue
    read -r pid <"$f" 2>/dev/null || continue
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && return 0
  done
  return 1
}

# Stop and disable the openvswitch-switch service: with systemd, or with sysvinit scripts
# (containers without systemd). Quiet: either may be missing.
disable_distro_ovs() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop openvswitch-switch ovs-vswitchd ovsdb-server >/dev/null 2>&1 || true
    systemctl disable openvswitch-switch ovs-vswitchd ovsdb-server >/dev/null 2>&1 || true
  else
    if distro_ovs_running; then
      if command -v service >/dev/null 2>&1; then
        service openvswitch-switch stop >/dev/null 2>&1 || true
      elif [[ -x /etc/init.d/openvswitch-switch ]]; then
        /etc/init.d/openvswitch-switch stop >/dev/null 2>&1 || true
      fi
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d openvswitch-switch disable >/dev/null 2>&1 || true
    fi
  fi
  if distro_ovs_running; then
    msg "warning: the distro's OVS still runs (/run/openvswitch/*.pid); the tests do not need it"
  else
    msg "distro openvswitch-switch service stopped and disabled (the tests run their own OVS)"
  fi
}

# Debian's OVN postinsts start their units only where systemd runs, through deb-systemd-invoke, which
# honours policy-rc.d: while OVN packages are being installed there, one that refuses every start (101)
# keeps a root-namespace ovn-controller from taking over the root OVS with a br-int.
POLICY_RC=/usr/sbin/policy-rc.d
with_start_policy() {
  local p ovn=0
  for p in "$@"; do [[ " ${OVN_PACKAGES[*]} " == *" $p "* ]] && ovn=1; done
  if ((ovn == 0)) || [[ ! -d /run/systemd/system ]] || [[ -e $POLICY_RC ]]; then
    # no systemd: nothing starts; an operator's own policy-rc.d is theirs and stays
    "$@"
    return
  fi
  printf '#!/bin/sh\n# dpu-overlay install.sh: no service starts while OVN packages install\nexit 101\n' >"$POLICY_RC"
  chmod 0755 "$POLICY_RC"
  local rc=0
  "$@" || rc=$?
  rm -f -- "$POLICY_RC"
  return "$rc"
}

# Disable (and stop, should one have started) the OVN units this run installed.
disable_distro_ovn() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now "${OVN_UNITS[@]}" >/dev/null 2>&1 || true
    msg "distro OVN units disabled (${OVN_UNITS[*]}): the testbed runs its own central and ovn-controllers"
  else
    msg "OVN installed; systemd is not running here, so none of its units started (the testbed runs its own)"
  fi
}

install_packages() {
  local missing=() p
  command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this is not a Debian system; use --no-apt and install the equivalents of: ${APT_PACKAGES[*]}"
  for p in "${APT_PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    msg "all ${#APT_PACKAGES[@]} Debian packages already installed"
    SUMMARY+=("packages: all present")
  else
    is_root || die "installing packages needs root (missing: ${missing[*]}); run as root or use --no-apt"
    msg "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    with_start_policy apt-get install -y -q --no-install-recommends "${missing[@]}"
    SUMMARY+=("packages: installed ${missing[*]}")
  fi
  local installed_ovn=0
  for p in "${missing[@]}"; do [[ " ${OVN_PACKAGES[*]} " == *" $p "* ]] && installed_ovn=1; done
  ((installed_ovn == 0)) || disable_distro_ovn
  local installed_ovs=0
  for p in "${missing[@]}"; do [[ $p == openvswitch-switch ]] && installed_ovs=1; done
  if ((installed_ovs)); then
    disable_distro_ovs
  elif distro_ovs_running; then
    msg "note: an OVS from /run/openvswitch is running; it was not installed by this run, so it is left alone (the tests do not use it)"
  fi
}

# ---------------------------------------------------------------- host: build and install
check_node() {
  command -v node >/dev/null 2>&1 || die "node not found: install Node.js 20 (e.g. from nodesource or the official tarball)"
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20 with npm"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "Node.js $(node --version) is too old: dpu-overlay needs Node 20 or later"
}

install_node_modules() {
  cd "$REPO"
  local hidden=node_modules/.package-lock.json
  if [[ -f package-lock.json ]]; then
    if [[ -f $hidden && $hidden -nt package-lock.json && $hidden -nt package.json ]]; then
      msg "node_modules is up to date with package-lock.json; skipping npm ci"
      SUMMARY+=("npm: node_modules up to date")
    else
      npm ci --no-audit --no-fund
      SUMMARY+=("npm: npm ci")
    fi
  else
    npm install --no-audit --no-fund
    SUMMARY+=("npm: npm install (no package-lock.json)")
  fi
}

build() {
  cd "$REPO"
  npm run build
}

install_binary() {
  local src=$REPO/dist/dpu-overlay dst=$CNI_BIN_DIR/dpu-overlay
  [[ -x $src ]] || die "$src does not exist: build it (run without --no-build, or npm run build)"
  install -d -m 0755 "$CNI_BIN_DIR"
  if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
    msg "$dst is up to date"
    SUMMARY+=("plugin: $dst (unchanged)")
  else
    # copy next to the target, then rename: a runtime never executes a half-written file
    local tmp=$CNI_BIN_DIR/.dpu-overlay.new.$$
    install -m 0755 "$src" "$tmp"
    mv -f -- "$tmp" "$dst"
    SUMMARY+=("plugin: $dst ($("$dst" --version 2>/dev/null || echo '?'))")
  fi
  local p linked=()
  for p in "${REFERENCE_PLUGINS[@]}"; do
    if [[ ! -e $CNI_BIN_DIR/$p && -x $REFERENCE_PLUGIN_DIR/$p ]]; then
      ln -s "$REFERENCE_PLUGIN_DIR/$p" "$CNI_BIN_DIR/$p"
      linked+=("$p")
    fi
  done
  ((${#linked[@]} == 0)) || SUMMARY+=("reference plugins linked into $CNI_BIN_DIR: ${linked[*]}")
  for p in "${REFERENCE_PLUGINS[@]}"; do
    [[ -e $CNI_BIN_DIR/$p ]] || msg "note: $CNI_BIN_DIR/$p is missing (the example conflist uses it; Debian: containernetworking-plugins)"
  done
}

# The node file example: root 0644 in a root 0755 directory. node.json itself is the operator's (it names this
# host's DPU); the plugin refuses it unless root-owned and not group/other-writable, in such a directory.
install_node_example() {
  local src=$REPO/cni-conf/$NODE_EXAMPLE dst=$NODE_DIR/$NODE_EXAMPLE tmp mode
  [[ -r $src ]] || die "$src is missing"
  if [[ ! -d $NODE_DIR ]]; then
    install -d -m 0755 -o root -g root "$NODE_DIR"
  fi
  mode=$(stat -c %a "$NODE_DIR")
  (((8#$mode & 8#022) == 0)) ||
    msg "warning: $NODE_DIR is writable by group or others (mode $mode); the plugin refuses node.json there: chmod go-w $NODE_DIR"
  if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
    msg "$dst is up to date"
  else
    tmp=$(mktemp "$NODE_DIR/.$NODE_EXAMPLE.XXXXXX")
    cat -- "$src" >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$dst"
    msg "wrote $dst"
  fi
  if [[ -e $NODE_DIR/node.json ]]; then
    SUMMARY+=("node file: $NODE_DIR/node.json present (left as it is); example: $dst")
  else
    SUMMARY+=("node file: none yet; example: $dst")
  fi
}

# The daemon path: one long-lived "dpu-overlay daemon" per host, in the host's netns. The plugin uses its socket
# (dpu.daemonSocket, default /run/dpu-overlay/dpu.sock, which the shipped configs leave at the default) when it
# answers and runs standalone otherwise; so the daemon starts before the runtimes that call the plugin.
daemon_unit() {
  cat <<EOF
[Unit]
Description=dpu-overlay daemon (DPU connections and OVS transactions for the CNI plugin)
Documentation=file://$REPO/docs/daemon.md
After=network-online.target
Wants=network-online.target
Before=kubelet.service containerd.service crio.service podman.service

[Service]
ExecStart=$CNI_BIN_DIR/dpu-overlay daemon --socket /run/dpu-overlay/dpu.sock --metrics-address 127.0.0.1:9741 --node-config /etc/cni/dpu-overlay/node.json
ExecReload=/bin/kill -HUP \$MAINPID
Restart=always
RestartSec=1
RuntimeDirectory=dpu-overlay
RuntimeDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
ProtectSystem=full
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
EOF
}

install_daemon_unit() {
  local dst=$SYSTEMD_UNIT_DIR/$DAEMON_UNIT tmp
  install -d -m 0755 "$SYSTEMD_UNIT_DIR"
  tmp=$(mktemp "$SYSTEMD_UNIT_DIR/.$DAEMON_UNIT.XXXXXX")
  daemon_unit >"$tmp"
  chmod 0644 "$tmp"
  if [[ -f $dst ]] && cmp -s "$tmp" "$dst"; then
    rm -f -- "$tmp"
    msg "$dst is up to date"
  else
    mv -f -- "$tmp" "$dst"
    msg "wrote $dst"
  fi
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl enable "$DAEMON_UNIT" >/dev/null 2>&1 || msg "warning: systemctl enable $DAEMON_UNIT failed"
    systemctl restart "$DAEMON_UNIT" || msg "warning: systemctl restart $DAEMON_UNIT failed: journalctl -u $DAEMON_UNIT"
    SUMMARY+=("daemon: $DAEMON_UNIT enabled and (re)started")
  else
    SUMMARY+=("daemon: $dst written; systemd is not running here, so not enabled (the plugin connects directly)")
  fi
}

host_main() {
  SUMMARY=()
  if ((APT)); then
    step "Debian packages"
    install_packages
  fi
  if ((BUILD)); then
    step "npm dependencies"
    check_node
    install_node_modules
    step "build (npm run build)"
    build
    SUMMARY+=("build: dist/dpu-overlay")
  fi
  step "install into $CNI_BIN_DIR"
  install_binary
  step "node file example ($NODE_DIR)"
  install_node_example
  if ((DAEMON_UNIT_WANTED)); then
    step "daemon unit"
    install_daemon_unit
  fi

  step "summary"
  local line
  for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line"; done
  cat <<EOF

  next steps:
EOF
  if ((DEV)); then
    cat <<EOF
    npm run demo                      # the emulated testbed demo (root)
    npm test                          # unit + end-to-end tests (root)
EOF
  fi
  cat <<EOF
  on a real host: copy cni-conf/10-dpu-overlay.conflist to /etc/cni/net.d/ (or apply the Multus NAD),
  this host's values:   install -m 0644 $NODE_DIR/$NODE_EXAMPLE $NODE_DIR/node.json   # then edit it
  create the DPU key:   ssh-keygen -t ed25519 -N '' -C dpu-overlay -f $NODE_DIR/id_ed25519
  pin the DPU host key: ssh-keyscan -t ed25519 <dpu-address> >> $NODE_DIR/known_hosts
  and on the DPU:       ./install.sh --dpu --authorize-key id_ed25519.pub
EOF
}

# ---------------------------------------------------------------- DPU mode
root_home() {
  local home
  home=$(getent passwd root 2>/dev/null | cut -d: -f6)
  echo "${home:-/root}"
}

authorize_key() {
  local pub=$1 file=$2 line=$3 blob=$4 dir
  dir=$(dirname -- "$file")
  if [[ ! -d $dir ]]; then
    install -d -m 0700 "$dir"
  fi
  if [[ ! -e $file ]]; then
    (umask 077 && : >"$file")
  fi
  if grep -qxF -- "$line" "$file"; then
    msg "$file already has the restricted line for this key"
    return 0
  fi
  if awk -v blob="$blob" '{ for (i = 1; i <= NF; i++) if ($i == blob) found = 1 } END { exit !found }' "$file"; then
    cp -p -- "$file" "$file.dpu-overlay.bak"
    local tmp=$file.dpu-overlay.tmp.$$
    awk -v blob="$blob" '{ keep = 1; for (i = 1; i <= NF; i++) if ($i == blob) keep = 0; if (keep) print }' "$file" >"$tmp"
    printf '%s\n' "$line" >>"$tmp"
    chmod --reference="$file" "$tmp" 2>/dev/null || chmod 0600 "$tmp"
    chown --reference="$file" "$tmp" 2>/dev/null || true
    mv -f -- "$tmp" "$file"
    msg "replaced the existing entry for this key in $file with the restricted one (backup: $file.dpu-overlay.bak)"
  else
    # keep the file newline-terminated before appending
    if [[ -s $file && $(tail -c 1 -- "$file" | od -An -c | tr -d ' ') != '\n' ]]; then
      printf '\n' >>"$file"
    fi
    printf '%s\n' "$line" >>"$file"
    msg "added the restricted line for $pub to $file"
  fi
}

dpu_main() {
  local src=$REPO/guard/dpu-guard.sh
  [[ -r $src ]] || die "$src is missing"
  [[ -x /usr/bin/perl || -x /bin/perl ]] ||
    msg "warning: perl not found; the guard needs it to check commands (apt-get install perl-base)"
  command -v ovs-vsctl >/dev/null 2>&1 || msg "warning: ovs-vsctl not found: is this the DPU (BlueField Arm side)?"

  step "forced-command guard"
  # the options end up in authorized_keys: check them now with the guard itself
  local check
  if ! check=$(SSH_ORIGINAL_COMMAND='ovs-appctl dpctl/dump-flows type=offloaded' "$src" "${GUARD_ARGS[@]}" --dry-run 2>&1); then
    die "guard options rejected: $check"
  fi
  if [[ -f $GUARD ]] && cmp -s "$src" "$GUARD"; then
    msg "$GUARD is up to date"
  else
    install -d -m 0755 "$GUARD_DIR"
    install -m 0755 "$src" "$GUARD.new.$$"
    mv -f -- "$GUARD.new.$$" "$GUARD"
    msg "installed $GUARD"
  fi

  local command=$GUARD a
  for a in "${GUARD_ARGS[@]}"; do
    case $a in
      --*) command+=" $a" ;;
      *) command+=" '$a'" ;;
    esac
  done
  local prefix="command=\"$command\",$KEY_OPTIONS"

  if [[ -n $AUTHORIZE_KEY ]]; then
    [[ -r $AUTHORIZE_KEY ]] || die "cannot read $AUTHORIZE_KEY"
    local type blob rest
    read -r type blob rest < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' -- "$AUTHORIZE_KEY" | head -n 1) || true
    [[ $type =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com)$ ]] ||
      die "$AUTHORIZE_KEY does not start with an OpenSSH public key type (got '${type:-}'); pass the .pub file"
    [[ $blob =~ ^[A-Za-z0-9+/]+=*$ ]] || die "$AUTHORIZE_KEY: the key is not base64"
    local file=${AUTHORIZED_KEYS:-$(root_home)/.ssh/authorized_keys}
    step "authorized_keys ($file)"
    authorize_key "$AUTHORIZE_KEY" "$file" "$prefix $type $blob dpu-overlay" "$blob"
  elif [[ -n $AUTHORIZED_KEYS ]]; then
    die "--authorized-keys needs --authorize-key FILE.pub"
  fi

  ((OVN == 0)) || dpu_ovn

  step "summary"
  cat <<EOF
  guard: $GUARD
  authorized_keys line for the plugin's key (root on this DPU):

$prefix ssh-ed25519 AAAA... dpu-overlay

  recommended in sshd_config: PermitRootLogin forced-commands-only
  test from the host:  ssh -i /etc/cni/dpu-overlay/id_ed25519 root@<dpu> ovs-appctl dpctl/dump-flows type=offloaded
                       (allowed)   and   ssh ... root@<dpu> id   (refused, exit 126)
EOF
  local hw
  if command -v ovs-vsctl >/dev/null 2>&1 && hw=$(ovs-vsctl --timeout=2 --if-exists get Open_vSwitch . other_config:hw-offload 2>/dev/null); then
    printf '  OVS other_config:hw-offload = %s\n' "${hw:-(unset)}"
    [[ $hw == '"true"' ]] || printf '  for hardware offload: ovs-vsctl set Open_vSwitch . other_config:hw-offload=true, then restart openvswitch-switch\n'
  fi
}

# ---------------------------------------------------------------- OVN
# This DPU as an OVN chassis: the Open_vSwitch external_ids ovn-controller reads (ovn-controller(8)) and the
# NB remote the guard uses for the plugin's writes, then ovn-controller itself.
dpu_ovn() {
  step "OVN chassis"
  command -v ovn-controller >/dev/null 2>&1 || die "ovn-controller not found: apt-get install ovn-host (OVN 21.03 or later)"
  command -v ovs-vsctl >/dev/null 2>&1 || die "ovs-vsctl not found: this needs the DPU's Open vSwitch"
  local current
  current=$(ovs-vsctl --timeout=10 --if-exists get Open_vSwitch . external_ids:system-id 2>/dev/null | tr -d '"') || current=
  if [[ -z $SYSTEM_ID ]]; then
    # a chassis keeps its name: OVN binds ports to it
    SYSTEM_ID=${current:-dpuo-$(cat /proc/sys/kernel/random/uuid)}
  elif [[ -n $current && $current != "$SYSTEM_ID" ]]; then
    msg "warning: renaming chassis $current to $SYSTEM_ID: ports bound to $current must be re-added"
  fi
  [[ $SYSTEM_ID != "$(hostname)" && $SYSTEM_ID != "$(hostname -f 2>/dev/null)" ]] ||
    die "--system-id must not equal a hostname (requested-chassis matches hostnames too)"
  local ids=(
    "external_ids:system-id=\"$SYSTEM_ID\""
    "external_ids:ovn-remote=\"$OVN_REMOTE\""
    "external_ids:ovn-encap-type=$ENCAP_TYPE"
    "external_ids:ovn-encap-ip=\"$ENCAP_IP\""
    "external_ids:ovn-bridge-datapath-type=$BRIDGE_DP_TYPE"
    "external_ids:ovn-nb=\"$OVN_NB\""
  )
  if ((${#OVN_NB_SSL[@]})); then
    ids+=("external_ids:ovn-nb-private-key=\"${OVN_NB_SSL[0]}\"" "external_ids:ovn-nb-certificate=\"${OVN_NB_SSL[1]}\""
      "external_ids:ovn-nb-ca-cert=\"${OVN_NB_SSL[2]}\"")
  fi
  ovs-vsctl --timeout=10 set Open_vSwitch . "${ids[@]}"
  msg "chassis $SYSTEM_ID: SB $OVN_REMOTE, NB $OVN_NB, $ENCAP_TYPE from $ENCAP_IP, br-int datapath $BRIDGE_DP_TYPE"
  [[ $ENCAP_TYPE == geneve ]] ||
    msg "note: VXLAN mode allows at most 4096 networks and 2048 ports per network, puts OVN's own key (not the VNI) on the wire, and applies to the whole cluster"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl enable --now ovn-controller >/dev/null 2>&1 || die "systemctl enable --now ovn-controller failed: journalctl -u ovn-controller"
  elif ! ovn-appctl -t ovn-controller version >/dev/null 2>&1; then
    /usr/share/ovn/scripts/ovn-ctl start_controller --ovn-manage-ovsdb=no >/dev/null ||
      die "ovn-ctl start_controller failed: see /var/log/ovn/ovn-controller.log"
  fi
  local n=20 status=
  while ((n-- > 0)); do
    status=$(ovn-appctl -t ovn-controller connection-status 2>/dev/null) || status=
    [[ $status == connected ]] && break
    sleep 0.5
  done
  [[ $status == connected ]] && msg "ovn-controller: connected to $OVN_REMOTE" ||
    msg "warning: ovn-controller is not connected to $OVN_REMOTE yet (${status:-no answer}): see /var/log/ovn/ovn-controller.log"
}

# A lab central on this machine: NB and SB listening on --listen without TLS, and ovn-northd.
OVN_DEFAULTS=/etc/default/ovn-central
OVN_CTL=/usr/share/ovn/scripts/ovn-ctl
central_main() {
  is_root || die "--ovn-central needs root"
  [[ -x $OVN_CTL ]] || die "$OVN_CTL not found: apt-get install ovn-central"
  local opts="--db-nb-addr=$LISTEN --db-nb-create-insecure-remote=yes --db-sb-addr=$LISTEN --db-sb-create-insecure-remote=yes"
  step "OVN central on $LISTEN"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    local line="OVN_CTL_OPTS=\"$opts\"  # dpu-overlay install.sh --ovn-central" tmp
    tmp=$(mktemp "$OVN_DEFAULTS.XXXXXX")
    { [[ ! -f $OVN_DEFAULTS ]] || grep -v '# dpu-overlay install.sh --ovn-central$' -- "$OVN_DEFAULTS"; echo "$line"; } >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$OVN_DEFAULTS"
    systemctl enable ovn-central >/dev/null 2>&1 || true
    systemctl restart ovn-central || die "systemctl restart ovn-central failed: journalctl -u ovn-northd -u ovn-ovsdb-server-nb -u ovn-ovsdb-server-sb"
  else
    # shellcheck disable=SC2086 # opts is a list of options
    "$OVN_CTL" $opts restart_northd >/dev/null || die "$OVN_CTL restart_northd failed: see /var/log/ovn/"
  fi
  local n=20
  until ovn-nbctl --db="tcp:$LISTEN:6641" --timeout=5 show >/dev/null 2>&1; do
    ((n-- > 0)) || die "the NB does not answer on tcp:$LISTEN:6641: see /var/log/ovn/"
    sleep 0.5
  done
  step "summary"
  cat <<EOF
  lab OVN central: NB tcp:$LISTEN:6641, SB tcp:$LISTEN:6642 (no TLS), northd running
  on each DPU:  ./install.sh --dpu --ovn --ovn-remote tcp:$LISTEN:6642 --ovn-nb tcp:$LISTEN:6641 --encap-ip <its VTEP>
  production: OVN's clustered NB/SB over ssl (ovn-ctl(8), "Creating a clustered db on 3 nodes"); see docs/install.md
EOF
}

case $MODE in
  host) host_main ;;
  dpu) dpu_main ;;
  central) central_main ;;
esac
