import { killAllNow } from './process.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

/**
 * Starts the servers, reports them, and keeps them up until SIGINT or SIGTERM; then stops them in
 * reverse order and resolves. A second signal during the stop kills everything at once.
 */
export async function serveUntilSignal(
  opts: StackOptions & { onReady: (stack: Stack) => void | Promise<void> },
): Promise<void> {
  let stack: Stack | undefined;
  let signalled: NodeJS.Signals | undefined;
  const wake: { fn?: () => void } = {};
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      killAllNow();
      process.exit(130);
    }
    signalled = sig;
    wake.fn?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    stack = await startStack(opts);
    if (!signalled) {
      await opts.onReady(stack);
      await new Promise<void>((resolve) => {
        wake.fn = resolve;
        if (signalled) resolve();
      });
    }
  } finally {
    await stack?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
