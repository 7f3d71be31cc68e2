// Replaced at build time by esbuild's define; the fallback serves ts-jest.
declare const __DPU_OVERLAY_VERSION__: string | undefined;
export const VERSION: string = typeof __DPU_OVERLAY_VERSION__ === 'string' ? __DPU_OVERLAY_VERSION__ : '0.0.0-dev';
