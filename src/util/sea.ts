/** The running executable's node:sea API, or undefined outside a single executable application. */
export interface SeaApi {
  isSea(): boolean;
  getAsset(name: string): ArrayBuffer;
  getAsset(name: string, encoding: string): string;
}

export function seaApi(): SeaApi | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sea = require('node:sea') as SeaApi;
    return sea.isSea() ? sea : undefined;
  } catch {
    return undefined; // a node without node:sea runs no SEA either
  }
}
