import { open } from 'node:fs/promises';

/** The last `lines` lines of a log file (read from its last 64 KiB), or [] when it does not exist. */
export async function tailFile(file: string, lines = 20): Promise<string[]> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return lastLines(buf.toString('utf8'), lines);
  } finally {
    await fh.close();
  }
}

export function lastLines(text: string, n: number): string[] {
  const all = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  return all.slice(Math.max(0, all.length - n));
}
