/** The command-running seam, shared by kernel/ (which implements it) and cni/ (which runs IPAM plugins through it). */

export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The boundary to the outside world on the host: unit tests record instead of executing. */
export interface CommandRunner {
  run(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Names of the network devices in this process's own network namespace. */
  hostNetdevs(): Set<string>;
}
