/** Defaults that zod-free code needs too (the forwarder in src/daemon/forward.ts); schema.ts's DEFAULTS re-exports them. */
export const DEFAULT_DAEMON_SOCKET = '/run/dpu-overlay/dpu.sock';
