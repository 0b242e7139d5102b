import net from 'node:net';
import { HarnessError } from './errors.js';

/** Asks the kernel for a free loopback port. Another process may take it before we bind, which the
 * server's own start-up then reports; a fixed port is checked with `assertPortFree` instead. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => {
      resolve(false);
    });
    srv.listen(port, '127.0.0.1', () => {
      srv.close(() => {
        resolve(true);
      });
    });
  });
}

export async function assertPortFree(server: string, port: number): Promise<void> {
  if (await isPortFree(port)) return;
  throw new HarnessError('port_in_use', `port ${port} on 127.0.0.1 is already in use`, {
    server,
    retriable: false,
    advice: `stop whatever listens on ${port} (\`ss -ltnp 'sport = :${port}'\`) or choose another port`,
  });
}

/** Resolves a fixed port (checked free) or picks a free one. */
export async function choosePort(server: string, fixed: number | undefined): Promise<number> {
  if (fixed === undefined) return freePort();
  await assertPortFree(server, fixed);
  return fixed;
}
