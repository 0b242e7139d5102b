// Reaps the harness's servers if the process that started them dies without stopping them (kill -9,
// OOM). It holds an IPC channel to that process: messages add or remove a process group, and a closed
// channel means the parent is gone, so every group still listed gets SIGTERM, then SIGKILL.
'use strict';
const groups = new Set();
process.on('message', (msg) => {
  if (msg && msg.add) groups.add(msg.add);
  if (msg && msg.remove) groups.delete(msg.remove);
});
function signalAll(sig) {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, sig);
    } catch {
      groups.delete(pgid);
    }
  }
}
process.on('disconnect', () => {
  signalAll('SIGTERM');
  setTimeout(() => {
    signalAll('SIGKILL');
    process.exit(0);
  }, 3000);
});
