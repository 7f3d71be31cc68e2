import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the daemon runs a forwarded CNI command with, in place of its own process-wide state: the request's
 * environment (fault points) and where the command's stderr goes (the reply). Unset in a standalone plugin.
 */
export interface RequestScope {
  env: Record<string, string | undefined>;
  stderr(text: string): void;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();
