/**
 * MOUNT version 3 (RFC 1813 appendix I): MNT hands out the export's root handle, UMNT/UMNTALL
 * forget mounts, DUMP lists them, EXPORT names the one export. Mounts are only a record for
 * DUMP (NFS calls are not checked against it, as with other servers).
 *
 * Life: created by createNfsService with the store's root handle; main thread.
 */
import type { RpcCall, VersionHandlers } from '@roce-rpc/oncrpc';
import * as mount from './protocol/mount3.generated.js';

/** Mounts remembered for DUMP: beyond this the oldest is forgotten (DUMP is advisory). */
const mountRecordsMax = 1024;
const AUTH_NONE = 0;
const AUTH_SYS = 1;

function clientName(call: RpcCall): string {
  const credential = call.credential;
  if ('sys' in credential) return credential.sys.machineName.slice(0, 255);
  return (call.context.remoteAddress ?? 'unknown').slice(0, 255);
}

function samePath(requested: string, exported: string): boolean {
  const trimmed = requested.length > 1 ? requested.replace(/\/+$/, '') : requested;
  return trimmed === exported;
}

export function mountProcedures(exportPath: string, rootHandle: Buffer): VersionHandlers<typeof mount.MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR> {
  const mounts = new Map<string, { host: string; directory: string }>();
  return {
    MOUNTPROC3_MNT: (directory: string, call: RpcCall): mount.mountres3 => {
      if (!samePath(directory, exportPath)) return { fhs_status: mount.MNT3ERR_NOENT };
      const host = clientName(call);
      if (mounts.size >= mountRecordsMax) mounts.delete(mounts.keys().next().value!);
      mounts.set(`${host}\0${directory}`, { host, directory });
      return { fhs_status: mount.MNT3_OK, mountinfo: { fhandle: rootHandle, auth_flavors: [AUTH_SYS, AUTH_NONE] } };
    },
    MOUNTPROC3_UMNT: (directory: string, call: RpcCall): void => {
      mounts.delete(`${clientName(call)}\0${directory}`);
    },
    MOUNTPROC3_UMNTALL: (_argument: void, call: RpcCall): void => {
      const host = clientName(call);
      for (const [key, record] of mounts) if (record.host === host) mounts.delete(key);
    },
    MOUNTPROC3_DUMP: (): mount.mountlist => {
      let list: mount.mountlist = null;
      for (const record of mounts.values()) list = { ml_hostname: record.host, ml_directory: record.directory, ml_next: list };
      return list;
    },
    MOUNTPROC3_EXPORT: (): mount.exports => ({ ex_dir: exportPath, ex_groups: null, ex_next: null }),
  };
}
