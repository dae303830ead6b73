/**
 * Interop: our client calls a real OpenAFS vlserver (Debian's openafs-dbserver)
 * with the VL_ procedures generated from interfaces/vldb.xg.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxClient, RxError, type ClientConnection } from '../dist/index.js';
import { VL_PACKAGE, type vldbentry } from '../dist/generated/vldb.js';
import { openAfsInstalled, primaryIpv4, startOpenAfsServer, type OpenAfsServer } from './helpers/openafs.js';

const VL_SERVICE_ID = 52;
const VL_PORT = 7003;
/** vlserver's "no such entry" (VL_NOENT from its error table). */
const VL_NOENT = 363524;
const VLF_RWEXISTS = 0x1000;
const byName = Object.fromEntries(VL_PACKAGE.procedures.map((procedure) => [procedure.name, procedure]));
const hostAddress = primaryIpv4();

function nameField(name: string): number[] {
  const field = new Array<number>(65).fill(0);
  [...Buffer.from(name)].forEach((byte, index) => (field[index] = byte));
  return field;
}

function nameOf(entry: vldbentry): string {
  const end = entry.name.indexOf(0);
  return Buffer.from(entry.name.slice(0, end < 0 ? undefined : end)).toString();
}

function entry(name: string, volumeId: number): vldbentry {
  const zeros = (count: number) => new Array<number>(count).fill(0);
  return {
    name: nameField(name),
    spares3: 0,
    nServers: 1,
    serverNumber: [0x7f000001, ...zeros(7)],
    serverPartition: zeros(8),
    serverFlags: [0x04, ...zeros(7)],
    volumeId: [volumeId, 0, 0],
    cloneId: 0,
    flags: VLF_RWEXISTS,
  };
}

describe.skipIf(!openAfsInstalled('vlserver') || hostAddress === undefined)('our client against a real OpenAFS vlserver', () => {
  let vlserver: OpenAfsServer;
  let client: RxClient;
  let connection: ClientConnection;

  beforeAll(async () => {
    vlserver = startOpenAfsServer('vlserver', hostAddress!);
    client = await RxClient.open({ call: { idleDeadMs: 1_000, keepaliveMs: 300 } });
    // The vlserver needs a moment to bind (ProbeServer answers), then to make
    // itself ubik sync site (until then database calls abort with UNOQUORUM).
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      connection = client.connect('127.0.0.1', VL_PORT, VL_SERVICE_ID);
      try {
        await connection.invoke(byName.ProbeServer!, {});
        await connection.invoke(byName.ListAttributes!, { attributes: { Mask: 0, server: 0, partition: 0, spares3: 0, volumeid: 0, flag: 0 } });
        break;
      } catch (error) {
        connection.close();
        if (performance.now() - started > 90_000) {
          throw new Error(`vlserver did not answer: ${String(error)}\n${readFileSync(path.join(vlserver.directory, 'log'), 'utf8')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await vlserver?.stop();
  });

  it('allocates consecutive volume ids with GetNewVolumeId', async () => {
    const first = (await connection.invoke(byName.GetNewVolumeId!, { bumpcount: 1 })) as { newvolumid: number };
    const second = (await connection.invoke(byName.GetNewVolumeId!, { bumpcount: 1 })) as { newvolumid: number };
    expect(first.newvolumid).toBeGreaterThan(0);
    expect(second.newvolumid).toBe(first.newvolumid + 1);
  });

  it('creates an entry and reads it back by name and by ListAttributes', async () => {
    const { newvolumid } = (await connection.invoke(byName.GetNewVolumeId!, { bumpcount: 1 })) as { newvolumid: number };
    await connection.invoke(byName.CreateEntry!, { newentry: entry('roce.interop', newvolumid) });
    const { entry: found } = (await connection.invoke(byName.GetEntryByNameO!, { volumename: 'roce.interop' })) as { entry: vldbentry };
    expect(nameOf(found)).toBe('roce.interop');
    expect(found.volumeId[0]).toBe(newvolumid);
    expect(found.nServers).toBe(1);
    const listed = (await connection.invoke(byName.ListAttributes!, {
      attributes: { Mask: 0, server: 0, partition: 0, spares3: 0, volumeid: 0, flag: 0 },
    })) as { nentries: number; blkentries: vldbentry[] };
    expect(listed.nentries).toBe(listed.blkentries.length);
    expect(listed.blkentries.map(nameOf)).toContain('roce.interop');
  });

  it('receives the vlserver ABORT code for a volume that does not exist', async () => {
    const failure = await connection.invoke(byName.GetEntryByNameO!, { volumename: 'no.such.volume' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RxError);
    expect(failure).toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: VL_NOENT });
  });
});
