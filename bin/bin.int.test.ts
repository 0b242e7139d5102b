import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { main, splitArgs } from './main.js';
import { loadUserConfig, migrationSetOf } from './user-config.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, 'cqrs-sync.ts');
const DEMO_CONFIG = path.join(here, '..', 'demo', 'cqrs-sync.config.ts');

/** The bin in a child process, as a user runs it. */
function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cqrs-sync bin', () => {
  it('splits --config off the command line', () => {
    expect(splitArgs(['--config', 'a.ts', 'relay', 'run'])).toEqual({
      configFile: 'a.ts',
      rest: ['relay', 'run'],
    });
    expect(splitArgs(['sink', '--config=b.ts'])).toEqual({ configFile: 'b.ts', rest: ['sink'] });
    expect(splitArgs(['dlq', 'list'])).toEqual({ rest: ['dlq', 'list'] });
  });

  it('prints usage with examples, and refuses an unknown command with exit 2', async () => {
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: cqrs-sync [--config <file>] <command>');
    expect(help.out).toContain('Examples:');
    const unknown = cli(['teleport']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command "teleport"');
    expect(await main([])).toBe(2);
  });

  it("hands each command its part of the user's config", () => {
    const relayHelp = cli(['--config', DEMO_CONFIG, 'relay', '--help']);
    expect(relayHelp.code).toBe(0);
    expect(relayHelp.out).toContain('Usage: cqrs-sync relay');
    expect(cli(['--config', DEMO_CONFIG, 'snapshot', '--help']).out).toContain(
      'relay snapshot [--restart]',
    );
    for (const cmd of [
      ['sink', '--help'],
      ['dlq', '--help'],
      ['replay', '--help'],
      ['status', '--help'],
    ]) {
      const r = cli(['--config', DEMO_CONFIG, ...cmd]);
      expect(r.code).toBe(0);
      expect(r.out.length).toBeGreaterThan(0);
    }
    expect(cli(['--config', DEMO_CONFIG, 'demo-web', '--help']).out).toContain(
      'cqrs-sync demo-web',
    );
  });

  it('stops on a bad URL in the environment, naming the variable', () => {
    const r = cli(['--config', DEMO_CONFIG, 'sink'], {
      KAFKA_BROKERS: '127.0.0.1:9',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:9',
      MYSQL_URL: 'postgres://nope',
    });
    expect(r.code).toBe(2);
    expect(r.err).toContain('MYSQL_URL');
  });
});

describe('loading the config module', () => {
  it('loads the demo config and compiles its catalog', async () => {
    const loaded = await loadUserConfig(DEMO_CONFIG);
    expect(loaded.catalog.topics()).toEqual(['cqrs.customer', 'cqrs.order']);
    expect(migrationSetOf(loaded.config)[0]?.migrations.length).toBeGreaterThan(0);
    expect(migrationSetOf({ aggregates: [] })).toEqual([]);
  });

  it('says what is wrong and where', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cqrs-config-'));
    const write = (name: string, body: string) => {
      const f = path.join(dir, name);
      writeFileSync(f, body);
      return f;
    };
    const errorOf = async (file: string) => {
      try {
        await loadUserConfig(file);
      } catch (e) {
        return (e as Error).message;
      }
      return 'loaded';
    };
    expect(await errorOf(path.join(dir, 'missing.ts'))).toMatch(/missing\.ts: no such file/);
    expect(await errorOf(write('no-default.mjs', 'export const x = 1;'))).toContain(
      'has no default export',
    );
    expect(await errorOf(write('shape.mjs', 'export default { aggregates: [] };'))).toContain(
      'aggregates:',
    );
    expect(await errorOf(write('syntax.ts', 'export default {'))).toContain('cannot load');
    expect(
      await errorOf(
        write(
          'bad-schema.mjs',
          `export default { aggregates: [{ type: 'Note', state: { fields: [{ name: 'id', type: 'strng' }] }, events: { NoteWritten: { fields: [] } } }] };`,
        ),
      ),
    ).toMatch(/bad-schema\.mjs: invalid aggregate catalog:\n.*NoteWritten: invalid Avro schema/);
    const badProjection = await errorOf(path.join(here, 'fixtures', 'bad-projection.config.ts'));
    expect(badProjection).toContain('bad-projection.config.ts');
    expect(badProjection).toContain('NoteErased');
  });
});
