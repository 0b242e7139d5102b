import { readFileSync } from 'node:fs';

/** CPU seconds of a server's processes so far (0 when not on Linux or the process is gone). */
function serverCpu(pids: readonly number[]): number {
  const tick = 100; // USER_HZ on Linux
  let s = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      s += (Number(f[11]) + Number(f[12])) / tick;
    } catch {
      // not Linux, or the process is gone: report what we have
    }
  }
  return s;
}

/**
 * CPU seconds this process and each named server used since the last call: which side limits a
 * phase. On a shared machine a phase that used less CPU than its wall time was waiting (or starved).
 */
export function cpuMeter(servers: Readonly<Record<string, () => readonly number[]>>): () => string {
  const nodeCpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const names = Object.keys(servers);
  const sample = (): number[] => [nodeCpu(), ...names.map((n) => serverCpu(servers[n]?.() ?? []))];
  let before = sample();
  return () => {
    const now = sample();
    const parts = ['node', ...names].map(
      (n, i) => `${n} ${((now[i] ?? 0) - (before[i] ?? 0)).toFixed(1)} CPU s`,
    );
    before = now;
    return parts.join(', ');
  };
}
