import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { askDaemon } from '../../src/cli/status';
import { HELLO, readLines } from '../../src/protocol/framing';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

const STATUS = { source: 'daemon', version: 'test', dpus: [], attachments: [] };

/** A server that writes greeting (if any) on connect, then answers each request line with reply(request). */
async function serve(greeting: string | undefined, reply: (req: unknown) => unknown): Promise<{ socket: string; server: Server; requests: unknown[] }> {
  const socket = join(tmpDir('ask-daemon-'), 'd.sock');
  const requests: unknown[] = [];
  const server = createServer((conn) => {
    if (greeting !== undefined) conn.write(greeting);
    readLines(
      conn,
      (line) => {
        const req = JSON.parse(line) as unknown;
        requests.push(req);
        conn.write(JSON.stringify(reply(req)) + '\n');
      },
      () => conn.destroy(),
    );
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, server, requests };
}

describe('askDaemon (status and doctor)', () => {
  it('reads the daemon hello before its nodeStatus answer', async () => {
    const { socket, server, requests } = await serve(JSON.stringify(HELLO) + '\n', (req) => ({ id: (req as { id: number }).id, ok: true, result: STATUS }));
    try {
      await expect(askDaemon(socket)).resolves.toEqual(STATUS);
      expect(requests).toEqual([{ id: 1, op: 'nodeStatus' }]);
    } finally {
      server.close();
    }
  });

  it('sends nothing to a socket that does not greet as a dpu-overlay daemon and says so', async () => {
    const { socket, server, requests } = await serve('{"hello":"something-else"}\n', () => ({ id: 1, ok: true, result: STATUS }));
    try {
      await expect(askDaemon(socket)).rejects.toThrow(/did not identify itself as a dpu-overlay daemon/);
      expect(requests).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('reports an error answer after the hello', async () => {
    const { socket, server } = await serve(JSON.stringify(HELLO) + '\n', () => ({ id: 1, ok: false, error: { code: 999, msg: 'no such op' } }));
    try {
      await expect(askDaemon(socket)).rejects.toThrow(/answered: no such op/);
    } finally {
      server.close();
    }
  });

  it('answers undefined when no daemon listens', async () => {
    await expect(askDaemon(join(tmpDir('ask-daemon-'), 'none.sock'))).resolves.toBeUndefined();
  });
});
