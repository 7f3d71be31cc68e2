/** Defaults that zod-free code needs too (the forwarder in src/daemon/forward.ts); schema.ts's DEFAULTS re-exports them. */
export const DEFAULT_DAEMON_SOCKET = '/run/dpu-overlay/dpu.sock';
/** The node file when neither DPU_OVERLAY_NODE_CONFIG nor the daemon's --node-config names one. */
export const DEFAULT_NODE_CONFIG = '/etc/cni/dpu-overlay/node.json';
/** The environment variable through which whoever runs the plugin (root: the runtime, the DaemonSet) names the node file. */
export const NODE_CONFIG_ENV = 'DPU_OVERLAY_NODE_CONFIG';
/** Where the daemon writes its native netlink addon before loading it (root-only; content-addressed file names). */
export const DEFAULT_NATIVE_DIR = '/run/dpu-overlay-native';
/** The environment variable that names another directory for it (whoever starts the daemon: root). */
export const NATIVE_DIR_ENV = 'DPU_OVERLAY_NATIVE_DIR';
