/**
 * Credentials and verifiers (RFC 5531 §8.2, §14 and Appendix A): opaque_auth on
 * the wire, AUTH_NONE and AUTH_SYS bodies. Parsing enforces the RFC limits
 * (body <= 400 bytes, machinename <= 255 bytes, <= 16 gids); a credential that
 * breaks them is a bad credential, answered with AUTH_ERROR, never a crash.
 */
import { XdrReader, XdrWriter, isXdrError } from '@roce-rpc/xdr';
import {
  AUTH_BODY_BYTES_MAX,
  AUTH_SYS_GIDS_MAX,
  AUTH_SYS_MACHINE_NAME_BYTES_MAX,
  AuthFlavor,
} from './protocol.js';

export interface OpaqueAuth {
  flavor: number;
  /** A view into the message: valid while the message bytes are. */
  body: Uint8Array;
}

export interface AuthSysParameters {
  stamp: number;
  machineName: string;
  uid: number;
  gid: number;
  gids: number[];
}

export type RpcCredential =
  | { flavor: typeof AuthFlavor.AUTH_NONE }
  | { flavor: typeof AuthFlavor.AUTH_SYS; sys: AuthSysParameters }
  | { flavor: number; body: Uint8Array };

const emptyBody = Buffer.alloc(0);

/** AUTH_NONE with an empty body: the verifier of every reply we send. */
export const authNone: OpaqueAuth = { flavor: AuthFlavor.AUTH_NONE, body: emptyBody };

export function readOpaqueAuth(reader: XdrReader): OpaqueAuth {
  const flavor = reader.readUint();
  const body = reader.readVariableOpaque(AUTH_BODY_BYTES_MAX);
  return { flavor, body };
}

export function writeOpaqueAuth(writer: XdrWriter, auth: OpaqueAuth): void {
  writer.writeUint(auth.flavor);
  writer.writeVariableOpaque(auth.body, AUTH_BODY_BYTES_MAX);
}

/** Parses an AUTH_SYS body; null when it is malformed or breaks a limit. */
export function parseAuthSys(body: Uint8Array): AuthSysParameters | null {
  try {
    const reader = new XdrReader(body);
    const stamp = reader.readUint();
    const machineName = reader.readString(AUTH_SYS_MACHINE_NAME_BYTES_MAX);
    const uid = reader.readUint();
    const gid = reader.readUint();
    const count = reader.readArrayLength(AUTH_SYS_GIDS_MAX);
    const gids = new Array<number>(count);
    for (let index = 0; index < count; index++) gids[index] = reader.readUint();
    reader.assertFinished();
    return { stamp, machineName, uid, gid, gids };
  } catch (error) {
    if (isXdrError(error)) return null;
    throw error;
  }
}

export function encodeAuthSys(parameters: AuthSysParameters): OpaqueAuth {
  const writer = new XdrWriter({ maxBytes: AUTH_BODY_BYTES_MAX });
  writer.writeUint(parameters.stamp);
  writer.writeString(parameters.machineName, AUTH_SYS_MACHINE_NAME_BYTES_MAX);
  writer.writeUint(parameters.uid);
  writer.writeUint(parameters.gid);
  writer.writeArrayLength(parameters.gids.length, AUTH_SYS_GIDS_MAX);
  for (const gid of parameters.gids) writer.writeUint(gid);
  return { flavor: AuthFlavor.AUTH_SYS, body: writer.finish().toBuffer() };
}
