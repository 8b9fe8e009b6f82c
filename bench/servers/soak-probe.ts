/**
 * Loaded into a benchmark server by bench:soak (`--import`): over the IPC channel it answers
 * 'measure' with RSS and heap used after a full GC, and 'snapshot' with the path of a heap snapshot.
 */
import v8 from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (msg: { probe?: string; path?: string }) => {
  if (msg.probe === 'measure') {
    gc?.();
    const m = process.memoryUsage();
    process.send?.({ probe: 'measure', rss: m.rss, heapUsed: m.heapUsed });
  } else if (msg.probe === 'snapshot') {
    gc?.();
    process.send?.({ probe: 'snapshot', path: v8.writeHeapSnapshot(msg.path) });
  }
});
// The IPC channel must not keep a server alive that was told to stop.
process.channel?.unref();
