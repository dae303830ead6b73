// Cost of one call into the addon, in this environment (host or lab guest):
// `node bench/calls.ts`. Prints nanoseconds per call for a few shapes.
import { COMPLETION_WORDS, liveObjects, ReleaseList, listDevices, openDevice } from '../dist/index.js';
import { binding } from '../dist/binding.js';

const CALLS = Number(process.env['BENCH_CALLS'] ?? 20_000);

function measure(name: string, call: () => unknown): void {
  for (let index = 0; index < 1000; index++) call();
  const started = process.hrtime.bigint();
  for (let index = 0; index < CALLS; index++) call();
  const nanoseconds = Number(process.hrtime.bigint() - started) / CALLS;
  console.log(`${name.padEnd(40)} ${nanoseconds.toFixed(0).padStart(8)} ns/call`);
}

const list = new ReleaseList(4);
const listHandle = list.handle;
let sink = 0;
measure('JavaScript function', () => (sink += 1));
measure('releaseListLength (unwrap, no args)', () => binding.releaseListLength(listHandle));
measure('releaseListPush+drain via class (2 calls)', () => {
  list.push(1);
  list.drain(() => {});
});
if (listDevices().length > 0) {
  const device = openDevice(listDevices()[0]!);
  const cq = device.createCompletionQueue({ depth: 16 });
  const words = new Uint32Array(16 * COMPLETION_WORDS);
  measure('cq.pollInto, empty CQ (unwrap + 3 args)', () => cq.pollInto(words, 16, 0));
  cq.close();
  device.close();
}
list.close();
console.log(sink > 0 ? JSON.stringify(liveObjects()) : '');
