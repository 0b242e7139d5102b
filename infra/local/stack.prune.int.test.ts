import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from '@jest/globals';
import { runDirName } from './config.js';
import { pruneRunDirs } from './stack.js';

const root = mkdtempSync(path.join(tmpdir(), 'cqrs-sync-runs-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** The pid of a process that has exited (a reuse this soon is unlikely). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

function runFolder(minute: number, pid: number): string {
  const name = runDirName(new Date(Date.UTC(2026, 11, 1, 10, minute)), pid);
  const dir = path.join(root, name, 'mariadb', 'data');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'ibdata1'), Buffer.alloc(4096));
  return name;
}

// Reported: every run left ~115 MB under .cache/run and nothing pruned it (six runs: 776 MB).
it('deletes finished runs beyond the newest few, and keeps the folder of a live process', () => {
  const dead = deadPid();
  const old = [runFolder(1, dead), runFolder(2, dead), runFolder(3, dead)];
  const live = runFolder(0, process.pid); // the oldest, but its process still runs
  const recent = [runFolder(4, dead), runFolder(5, dead)];
  mkdirSync(path.join(root, 'not-a-run'));
  writeFileSync(path.join(root, 'note.txt'), 'kept');

  const deleted = pruneRunDirs(root, 2);

  expect(deleted.sort()).toEqual(old.map((n) => path.join(root, n)).sort());
  expect(readdirSync(root).sort()).toEqual([live, ...recent, 'not-a-run', 'note.txt'].sort());
  expect(pruneRunDirs(root, 2)).toEqual([]);
  expect(pruneRunDirs(path.join(root, 'absent'), 2)).toEqual([]);
  expect(existsSync(path.join(root, live, 'mariadb', 'data', 'ibdata1'))).toBe(true);
});
