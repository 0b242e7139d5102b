// Reaps the harness's servers if the process that started them dies without stopping them (kill -9,
// OOM). It holds an IPC channel to that process: messages add or remove a process group, and a closed
// channel means the parent is gone (or, after a clean stop, let go of us), so every group still
// alive gets SIGTERM, then SIGKILL after 3 s. It exits as soon as none is left: at once after a
// clean stop, when there is none.
'use strict';
const GRACE_MS = 3000;
const groups = new Set();
process.on('message', (msg) => {
  if (msg && msg.add) groups.add(msg.add);
  if (msg && msg.remove) groups.delete(msg.remove);
});
/** Signals every listed group; forgets those that are gone (ESRCH). */
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
  const deadline = Date.now() + GRACE_MS;
  const check = () => {
    signalAll(0);
    if (groups.size === 0) process.exit(0);
    if (Date.now() >= deadline) {
      signalAll('SIGKILL');
      process.exit(0);
    }
    setTimeout(check, 50);
  };
  check();
});
