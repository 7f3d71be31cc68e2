/** Milliseconds since `since` (a performance.now() reading), to 0.1 ms: the unit of every timing the plugin logs. */
export function elapsedMs(since: number): number {
  return Math.round((performance.now() - since) * 10) / 10;
}
