import { ManagedProcess, type ProcessSpec } from './process.js';
import type { ServerHandle, ServerName } from './types.js';

/**
 * A server run here from a process spec. It keeps its port and data directory across restarts, so
 * chaos tests can stop, kill and start it again and clients reconnect to the same address.
 */
export class LocalServer implements ServerHandle {
  readonly origin = 'local' as const;
  private current: ManagedProcess | undefined;

  constructor(
    readonly name: ServerName,
    readonly description: string,
    readonly env: Readonly<Record<string, string>>,
    private readonly spec: () => ProcessSpec,
    private readonly graceMs: number,
  ) {}

  static async launch(
    name: ServerName,
    spec: () => ProcessSpec,
    graceMs: number,
    describe: () => Promise<{ description: string; env: Record<string, string> }>,
  ): Promise<LocalServer> {
    const proc = await ManagedProcess.start(spec());
    try {
      const { description, env } = await describe();
      const server = new LocalServer(name, description, env, spec, graceMs);
      server.current = proc;
      return server;
    } catch (e) {
      await proc.stop(graceMs);
      throw e;
    }
  }

  pids(): number[] {
    return this.current?.alive ? [this.current.pid] : [];
  }

  get logFile(): string | undefined {
    return this.current?.logFile;
  }

  async start(): Promise<void> {
    if (this.current?.alive) return;
    this.current = await ManagedProcess.start(this.spec());
  }

  async stop(): Promise<void> {
    await this.current?.stop(this.graceMs);
  }

  async kill(): Promise<void> {
    await this.current?.kill();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
