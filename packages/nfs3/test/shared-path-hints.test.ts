/**
 * SharedPathHints: the inode -> path hints the DirectoryStores of one export share across
 * svcrdma's worker threads. A handle made by one store resolves in another without walking the
 * export; a wrong hint costs a walk, never a wrong object; the table stays its size.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryStore, SharedPathHints } from '../src/index.js';
import { noAttributes } from './helpers.js';

const owner = { uid: 0, gid: 0 };

describe('SharedPathHints', () => {
  it('answers the last path published for an inode; another inode in the slot replaces it; long paths are not shared', () => {
    const hints = SharedPathHints.create(4);
    hints.publish(7n, 'a/b');
    expect(hints.lookup(7n)).toBe('a/b');
    hints.publish(7n, 'c');
    expect(hints.lookup(7n)).toBe('c');
    hints.publish(11n, 'd/e'); // 11 & 3 === 7 & 3
    expect(hints.lookup(7n)).toBeUndefined();
    expect(hints.lookup(11n)).toBe('d/e');
    expect(hints.lookup(8n)).toBeUndefined();
    hints.publish(9n, 'x'.repeat(241));
    expect(hints.lookup(9n)).toBeUndefined();
  });

  it('refuses memory that is not whole power-of-two slots', () => {
    expect(() => SharedPathHints.over(new SharedArrayBuffer(256 * 3))).toThrow(/power-of-two/);
    expect(() => SharedPathHints.over(new ArrayBuffer(256) as unknown as SharedArrayBuffer)).toThrow(/SharedArrayBuffer/);
  });

  it('is seen by another thread over the same buffer', async () => {
    const hints = SharedPathHints.create(16);
    const worker = new Worker(
      `import { workerData, parentPort } from 'node:worker_threads';
       const { SharedPathHints } = await import(workerData.module);
       SharedPathHints.over(workerData.buffer).publish(123456789n, 'from/the/worker');
       parentPort.postMessage('done');`,
      { eval: true, workerData: { buffer: hints.buffer, module: new URL('../dist/index.js', import.meta.url).href } },
    );
    await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await worker.terminate();
    expect(hints.lookup(123456789n)).toBe('from/the/worker');
  });
});

describe('DirectoryStores sharing path hints', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'nfs3-hints-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function storePair(shared: boolean): Promise<[DirectoryStore, DirectoryStore]> {
    const handleSecret = randomBytes(32);
    const hints = shared ? SharedPathHints.create(64) : undefined;
    return [
      await DirectoryStore.open({ root, handleSecret, blockingCalls: true, pathHints: hints }),
      await DirectoryStore.open({ root, handleSecret, blockingCalls: true, pathHints: hints }),
    ];
  }

  /** A few directories for a walk to go through before it finds the new file. */
  async function populate(): Promise<void> {
    for (let directory = 0; directory < 5; directory++) {
      await mkdir(join(root, `d${directory}`));
      for (let file = 0; file < 5; file++) await writeFile(join(root, `d${directory}`, `f${file}`), 'x');
    }
  }

  /** The handle a lookup finds (it must find one). */
  async function handleAt(store: DirectoryStore, directory: Uint8Array, name: string): Promise<Buffer> {
    const { object } = await store.lookup(directory, name);
    expect(object).not.toBeNull();
    return object!.handle;
  }

  async function createdFile(store: DirectoryStore, directory: Uint8Array, name: string): Promise<Buffer> {
    return (await store.create(directory, name, { kind: 'file', mode: 'unchecked', attributes: noAttributes }, owner)).object.handle;
  }

  it("resolve each other's new handles without walking the export", async () => {
    await populate();
    const [creator, other] = await storePair(true);
    const deep = (await creator.create(await handleAt(creator, creator.rootHandle, 'd4'), 'new-dir', { kind: 'directory', attributes: noAttributes }, owner)).object.handle;
    const file = await createdFile(creator, deep, 'new-file');
    expect((await other.getAttributes(file)).type).toBe(1);
    expect((await other.getAttributes(deep)).type).toBe(2);
    expect(other.pathWalks).toBe(0);
  });

  it('without hints the other store walks (the cost the hints remove)', async () => {
    await populate();
    const [creator, other] = await storePair(false);
    const file = await createdFile(creator, await handleAt(creator, creator.rootHandle, 'd4'), 'new-file');
    expect((await other.getAttributes(file)).type).toBe(1);
    expect(other.pathWalks).toBe(1);
  });

  it('a stale hint (the object moved on the host) costs a walk, and the walk finds the object', async () => {
    await populate();
    const [creator, other] = await storePair(true);
    const file = await createdFile(creator, await handleAt(creator, creator.rootHandle, 'd1'), 'moving');
    await rename(join(root, 'd1', 'moving'), join(root, 'd3', 'moved'));
    expect((await other.getAttributes(file)).type).toBe(1);
    expect(other.pathWalks).toBe(1);
    expect(await handleAt(other, await handleAt(other, other.rootHandle, 'd3'), 'moved')).toEqual(file);
  });
});
