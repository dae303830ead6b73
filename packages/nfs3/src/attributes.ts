/**
 * Attribute helpers: nfstime3 <-> nanoseconds, the server's time as an nfstime3, wcc_data from
 * before/after attributes, and the result arms every procedure repeats (post_op_attr).
 * Functions of any thread; serverTime() keeps the value of the last millisecond it answered
 * (per thread: module state).
 */
import type { fattr3, nfstime3, post_op_attr, pre_op_attr, sattr3, wcc_data } from './protocol/nfs3.generated.js';
import { NF3DIR, NF3LNK, NF3REG } from './protocol/nfs3.generated.js';
import type { NfsStore } from './store/store.js';

const nanosecondsPerSecond = 1_000_000_000n;

export function timeFromNanoseconds(nanoseconds: bigint): nfstime3 {
  return { seconds: Number(BigInt.asUintN(32, nanoseconds / nanosecondsPerSecond)), nseconds: Number(nanoseconds % nanosecondsPerSecond) };
}

export function nanosecondsFromTime(time: nfstime3): bigint {
  return BigInt(time.seconds) * nanosecondsPerSecond + BigInt(time.nseconds);
}

/** The last serverTime() answered, and the millisecond it stands for. */
let lastServerTime: nfstime3 = Object.freeze({ seconds: 0, nseconds: 0 });
let lastServerMillis = -1;

/**
 * Now, to the millisecond (as the clock gives it), as a frozen nfstime3 shared by every caller in
 * the same millisecond: the memory store stamps each change with it, with no BigInt arithmetic.
 */
export function serverTime(): nfstime3 {
  const millis = Date.now();
  if (millis !== lastServerMillis) {
    lastServerMillis = millis;
    lastServerTime = Object.freeze({ seconds: Math.floor(millis / 1000) >>> 0, nseconds: (millis % 1000) * 1_000_000 });
  }
  return lastServerTime;
}

/** A client's time kept as given, its nseconds past a second carried into seconds (modulo 2^32). */
export function normalizedTime(time: nfstime3): nfstime3 {
  return Object.freeze({ seconds: (time.seconds + Math.floor(time.nseconds / 1_000_000_000)) >>> 0, nseconds: time.nseconds % 1_000_000_000 });
}

export function postOpAttributes(attributes: fattr3 | null): post_op_attr {
  return attributes === null ? { attributes_follow: false } : { attributes_follow: true, attributes };
}

/** Attributes for a result arm: failures to read them only drop the optional attributes. */
export async function attributesOrNull(store: NfsStore, handle: Uint8Array): Promise<fattr3 | null> {
  try {
    return await store.getAttributes(handle);
  } catch {
    return null;
  }
}

export async function postOpAttributesOf(store: NfsStore, handle: Uint8Array): Promise<post_op_attr> {
  return postOpAttributes(await attributesOrNull(store, handle));
}

export function preOpAttributes(attributes: fattr3 | null): pre_op_attr {
  return attributes === null
    ? { attributes_follow: false }
    : { attributes_follow: true, attributes: { size: attributes.size, mtime: attributes.mtime, ctime: attributes.ctime } };
}

export async function weakCacheConsistency(store: NfsStore, handle: Uint8Array, before: fattr3 | null): Promise<wcc_data> {
  return { before: preOpAttributes(before), after: await postOpAttributesOf(store, handle) };
}

/** wcc_data from what the store saw around its change. */
export function weakCacheConsistencyOf(change: { before: fattr3 | null; after: fattr3 | null }): wcc_data {
  return { before: preOpAttributes(change.before), after: postOpAttributes(change.after) };
}

/**
 * wcc_data of a change that failed: the attributes now, with none before (a failure may still
 * have changed the object, so now is not a safe 'before'). One read, none ahead of every call.
 */
export async function failedChangeConsistency(store: NfsStore, handle: Uint8Array): Promise<wcc_data> {
  return { before: { attributes_follow: false }, after: await postOpAttributesOf(store, handle) };
}

/** Mode bits from a new object's sattr3, or the default a fresh object of that type gets. */
export function requestedMode(attributes: sattr3, type: typeof NF3REG | typeof NF3DIR | typeof NF3LNK): number {
  if (attributes.mode.set_it === true) return attributes.mode.mode & 0o7777;
  return type === NF3DIR ? 0o755 : type === NF3LNK ? 0o777 : 0o644;
}
