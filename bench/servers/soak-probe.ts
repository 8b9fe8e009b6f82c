/**
 * Loaded into a benchmark server by bench:soak (`--import`): over the IPC channel it answers
 * 'measure' with RSS, heap used and V8's committed heap (by space) after a full GC, and 'snapshot'
 * with the path of a heap snapshot.
 */
import v8 from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (msg: { probe?: string; path?: string }) => {
  if (msg.probe === 'measure') {
    gc?.();
    const m = process.memoryUsage();
    const committed = (name: string) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name)?.space_size ?? 0;
    process.send?.({
      probe: 'measure',
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      newSpace: committed('new_space'),
      codeSpace: committed('code_space'),
    });
  } else if (msg.probe === 'snapshot') {
    gc?.();
    process.send?.({ probe: 'snapshot', path: v8.writeHeapSnapshot(msg.path) });
  }
});
// The IPC channel must not keep a server alive that was told to stop.
process.channel?.unref();
