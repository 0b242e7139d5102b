/**
 * Writer processes for the kill -9 tests, seen from the parent: each runs test/chaos/writer-child.ts
 * on a share of the commands and reports every command's fate on stdout, which `WriterProcess` reads
 * to know what was sent, what returned and what was in flight when it was killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

export interface WriterCommand {
  readonly name: string;
  readonly input: { readonly commandId: string } & Readonly<Record<string, unknown>>;
}

/** What the writer reported for a command that returned. */
export interface WriterOutcome {
  readonly version: number;
  readonly eventIds: readonly string[];
  readonly kind: 'applied' | 'duplicate' | 'no_events';
}

/** The shop's commands name their aggregate `orderId` (orders) or `customerId` (customers). */
export function aggregateIdOf(c: Pick<WriterCommand, 'input'>): string {
  return String(c.input.orderId ?? c.input.customerId);
}

/** FNV-1a: the writer's lane of an aggregate (independent of how commands are shared out). */
export function laneHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Which of `writers` writer processes owns an aggregate: one writer per aggregate, no conflicts. */
export function writerOf(c: Pick<WriterCommand, 'input'>, writers: number): number {
  let h = 0;
  for (const ch of aggregateIdOf(c)) h = (h * 31 + ch.charCodeAt(0)) | 0;
  return Math.abs(h) % writers;
}

/**
 * One writer, restarted after every kill with the commands it has not finished: those never sent,
 * and those in flight at the kill unless `restart(false)` abandons them (never sent again; the test
 * then decides their fate from MongoDB and MySQL).
 */
export class WriterProcess {
  /** Command ids reported sent at least once. */
  readonly sent = new Set<string>();
  readonly outcomes = new Map<string, WriterOutcome>();
  /** Command id -> error code. */
  readonly refused = new Map<string, string>();
  /** In flight at a kill and not sent again. */
  readonly abandoned = new Set<string>();
  /** In flight at a kill and sent again by the next process. */
  readonly resent = new Set<string>();
  /** How many commands were in flight at each kill. */
  readonly inFlightAtKills: number[] = [];
  /** `ok` and `refused` lines since the last spawn. */
  returnedSinceSpawn = 0;
  spawns = 0;
  private proc: ChildProcess | undefined;
  private closed: Promise<void> = Promise.resolve();
  private inFlight = new Set<string>();
  private up = false;
  private finished = false;
  private partial = '';
  private tail = '';

  constructor(
    readonly name: string,
    readonly commands: readonly WriterCommand[],
    private readonly env: Record<string, string>,
  ) {}

  /** Every command reported ok or refused, or abandoned. */
  get complete(): boolean {
    return this.commands.every(
      (c) => this.isFinal(c.input.commandId) || this.abandoned.has(c.input.commandId),
    );
  }

  /** Commands reported ok or refused, or abandoned. */
  get settled(): number {
    return this.outcomes.size + this.refused.size + this.abandoned.size;
  }

  /** Started, ready, and not finished or dead. */
  get running(): boolean {
    return this.up && !this.finished && this.alive;
  }

  get alive(): boolean {
    const p = this.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Exited without being killed and without finishing its commands. */
  get crashed(): boolean {
    const p = this.proc;
    return p !== undefined && p.exitCode !== null && !(this.finished && p.exitCode === 0);
  }

  output(): string {
    return this.tail;
  }

  start(): void {
    this.spawn(this.commands);
  }

  /** Starts a new process on what is left (after a kill or a crash). */
  restart(resendInFlight = true): void {
    if (resendInFlight) for (const id of this.inFlight) this.resent.add(id);
    else for (const id of this.inFlight) this.abandoned.add(id);
    this.spawn(
      this.commands.filter(
        (c) => !this.isFinal(c.input.commandId) && !this.abandoned.has(c.input.commandId),
      ),
    );
  }

  /** `kill -9` (or another signal); resolves once the process is gone and its output read. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.alive) {
      this.proc?.kill(signal);
      await this.closed;
      this.inFlightAtKills.push(this.inFlight.size);
    }
  }

  /** Resolves when the current process has exited and its output is read. */
  exited(): Promise<void> {
    return this.closed;
  }

  private isFinal(id: string): boolean {
    return this.outcomes.has(id) || this.refused.has(id);
  }

  private spawn(commands: readonly WriterCommand[]): void {
    this.up = false;
    this.finished = false;
    this.partial = '';
    this.returnedSinceSpawn = 0;
    this.inFlight = new Set();
    this.spawns++;
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'writer-child.ts')], {
      cwd: root,
      env: { ...process.env, ...this.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.closed = new Promise((r) =>
      proc.once('close', () => {
        r();
      }),
    );
    proc.stdout.on('data', (d: Buffer) => {
      const text = this.partial + d.toString();
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.read(line);
    });
    proc.stderr.on('data', (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-16_000);
    });
    // The process may be killed before it read everything.
    proc.stdin.on('error', () => undefined);
    proc.stdin.end(commands.map((c) => `${JSON.stringify(c)}\n`).join(''));
  }

  private read(line: string): void {
    const [word, id = '', ...rest] = line.split(' ');
    switch (word) {
      case 'ready':
        this.up = true;
        return;
      case 'done':
        this.finished = true;
        return;
      case 'sent':
        this.sent.add(id);
        this.inFlight.add(id);
        return;
      case 'ok': {
        const [version = '', ids = '-', kind = 'applied'] = rest;
        this.outcomes.set(id, {
          version: Number(version),
          eventIds: ids === '-' ? [] : ids.split(','),
          kind: kind as WriterOutcome['kind'],
        });
        this.inFlight.delete(id);
        this.returnedSinceSpawn++;
        return;
      }
      case 'refused':
        this.refused.set(id, rest[0] ?? 'error');
        this.inFlight.delete(id);
        this.returnedSinceSpawn++;
        return;
      default:
        this.tail = (this.tail + line + '\n').slice(-16_000);
    }
  }
}
