import { describe, expect, it } from '@jest/globals';
import { loadHarnessConfig, runDirName, runDirsToPrune } from './config.js';

// Reported: every run left ~115 MB under .cache/run and nothing pruned it (six runs: 776 MB).
describe('run folders', () => {
  const at = (minute: number, pid: number) =>
    runDirName(new Date(Date.UTC(2026, 11, 1, 10, minute, 0, 5)), pid);

  it('names a run folder by its start time and the pid that owns it', () => {
    expect(runDirName(new Date(Date.UTC(2026, 11, 1, 21, 32, 36, 68)), 3113)).toBe(
      '2026-12-01T21-32-36-068Z-3113',
    );
  });

  it('prunes all but the newest finished runs, never a live one nor a folder it did not name', () => {
    const names = [at(3, 103), at(1, 101), 'notes', at(5, 105), at(2, 102), at(4, 104), at(0, 9)];
    const alive = (pid: number) => pid === 9 || pid === 104;
    // Finished, newest first: 105, 103, 102, 101. Keep two.
    expect(runDirsToPrune(names, 2, alive)).toEqual([at(2, 102), at(1, 101)]);
    expect(runDirsToPrune(names, 0, alive)).toEqual([
      at(5, 105),
      at(3, 103),
      at(2, 102),
      at(1, 101),
    ]);
    expect(runDirsToPrune(names, 10, alive)).toEqual([]);
    expect(runDirsToPrune(['2026-12-01T10-00-00-005Z-x', 'tmp-123'], 0, () => false)).toEqual([]);
  });

  it('prunes the default folders only, keeping 3 unless CQRS_SYNC_KEEP_RUNS says otherwise', () => {
    const byDefault = loadHarnessConfig({ PATH: '/usr/bin' });
    expect(byDefault.runsDir).toMatch(/\.cache\/run$/);
    expect(byDefault.runDir.startsWith(`${byDefault.runsDir ?? '?'}/`)).toBe(true);
    expect(byDefault.keepRuns).toBe(3);
    expect(loadHarnessConfig({ CQRS_SYNC_KEEP_RUNS: '0' }).keepRuns).toBe(0);
    expect(loadHarnessConfig({ CQRS_SYNC_RUN_DIR: '/tmp/mine' }).runsDir).toBeUndefined();
    expect(() => loadHarnessConfig({ CQRS_SYNC_KEEP_RUNS: '-1' })).toThrow(/CQRS_SYNC_KEEP_RUNS/);
  });
});
