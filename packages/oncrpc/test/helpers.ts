/** Builders for raw call messages, so tests can state the exact bytes a peer sends. */
import { XdrWriter } from '@roce-rpc/xdr';
import { AuthFlavor, MessageType } from '../src/protocol.js';

export interface RawCall {
  xid?: number;
  messageType?: number;
  rpcVersion?: number;
  program: number;
  version: number;
  procedure: number;
  credentialFlavor?: number;
  credentialBody?: Uint8Array;
  verifierFlavor?: number;
  verifierBody?: Uint8Array;
  /** Already-encoded arguments. */
  argument?: Uint8Array;
}

export function rawCall(call: RawCall): Buffer {
  const writer = new XdrWriter();
  writer.writeUint(call.xid ?? 0x01020304);
  writer.writeUint(call.messageType ?? MessageType.CALL);
  writer.writeUint(call.rpcVersion ?? 2);
  writer.writeUint(call.program);
  writer.writeUint(call.version);
  writer.writeUint(call.procedure);
  writer.writeUint(call.credentialFlavor ?? AuthFlavor.AUTH_NONE);
  writer.writeVariableOpaque(call.credentialBody ?? Buffer.alloc(0));
  writer.writeUint(call.verifierFlavor ?? AuthFlavor.AUTH_NONE);
  writer.writeVariableOpaque(call.verifierBody ?? Buffer.alloc(0));
  if (call.argument) writer.writeRaw(call.argument);
  return writer.finish().toBuffer();
}

export function uints(...values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => buffer.writeUInt32BE(value >>> 0, index * 4));
  return buffer;
}

/** An AUTH_SYS body written by hand (not with our encoder), to test the parser against. */
export function authSysBody(machineName: string, uid: number, gid: number, gids: number[]): Buffer {
  const name = Buffer.from(machineName);
  const padded = Buffer.concat([name, Buffer.alloc((4 - (name.length % 4)) % 4)]);
  return Buffer.concat([uints(0x5eed), uints(name.length), padded, uints(uid, gid, gids.length, ...gids)]);
}
