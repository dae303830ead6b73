/**
 * The dispatcher answers every call with the reply RFC 5531 prescribes; the
 * expected replies are written out byte for byte.
 */
import { describe, expect, test } from 'vitest';
import { XdrReader, xdrString, xdrUint, xdrVariableOpaque, xdrVoid, type XdrEncoding } from '@roce-rpc/xdr';
import { Dispatcher, OncRpcError, OncRpcErrorCode, defineProcedure, type RpcCall, type RpcReply } from '../src/index.js';
import { AuthFlavor } from '../src/protocol.js';
import { authSysBody, rawCall, uints } from './helpers.js';

const PROGRAM = 400100;
const context = { transport: 'test' } as const;

const versionTwo = {
  name: 'V2',
  version: 2,
  procedures: [
    defineProcedure('DOUBLE', 1, xdrUint, xdrUint),
    defineProcedure('SLOW_DOUBLE', 2, xdrUint, xdrUint),
    defineProcedure('FAIL', 3, xdrVoid, xdrVoid),
    defineProcedure('WHOAMI', 4, xdrVoid, xdrString(255)),
    defineProcedure('READ', 5, xdrUint, xdrVariableOpaque(0xffffffff, true), { argument: false, result: true }),
    defineProcedure('WRITE', 6, xdrVariableOpaque(), xdrUint, { argument: true, result: false }),
    defineProcedure('BAD_RESULT', 7, xdrVoid, xdrUint),
    defineProcedure('UNIMPLEMENTED', 8, xdrVoid, xdrVoid),
  ],
} as const;
const versionFour = { name: 'V4', version: 4, procedures: [defineProcedure('DOUBLE', 1, xdrUint, xdrUint)] } as const;

const fileData = Buffer.alloc(65536, 0x42);
const handlerErrors: unknown[] = [];

function makeDispatcher(): Dispatcher {
  const dispatcher = new Dispatcher({ onHandlerError: (error) => handlerErrors.push(error) });
  dispatcher.addVersion(PROGRAM, versionTwo, {
    DOUBLE: (value) => value * 2,
    SLOW_DOUBLE: async (value) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return value * 2;
    },
    FAIL: () => {
      throw new Error('handler bug');
    },
    WHOAMI: (_argument: void, call: RpcCall) => ('sys' in call.credential ? `${call.credential.sys.machineName}:${call.credential.sys.uid}:${call.credential.sys.gids.join(',')}` : 'nobody'),
    READ: () => fileData,
    WRITE: (data) => data.length,
    BAD_RESULT: () => -1,
  });
  dispatcher.addVersion(PROGRAM, versionFour, { DOUBLE: (value) => value * 2 });
  return dispatcher;
}

function syncReply(reply: RpcReply | Promise<RpcReply> | null): RpcReply {
  expect(reply).not.toBeNull();
  expect(reply).not.toBeInstanceOf(Promise);
  return reply as RpcReply;
}

function bytes(message: XdrEncoding): string {
  return message.toBuffer().toString('hex');
}

const xid = '01020304';
const accepted = xid + '00000001' + '00000000' + '00000000' + '00000000';
const denied = xid + '00000001' + '00000001';

describe('successful calls', () => {
  test('a synchronous handler is answered synchronously with SUCCESS and its result', () => {
    const dispatcher = makeDispatcher();
    const reply = syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 1, argument: uints(21) }), context));
    expect(reply.kind).toBe('SUCCESS');
    expect(bytes(reply.message)).toBe(accepted + '00000000' + '0000002a');
    expect(dispatcher.metrics.replies.SUCCESS).toBe(1);
  });

  test('procedure 0 answers as the NULL procedure without being declared', () => {
    const reply = syncReply(makeDispatcher().handleCall(rawCall({ program: PROGRAM, version: 4, procedure: 0 }), context));
    expect(bytes(reply.message)).toBe(accepted + '00000000');
  });

  test('an asynchronous handler yields a promise of the reply', async () => {
    const pending = makeDispatcher().handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 2, argument: uints(5) }), context);
    expect(pending).toBeInstanceOf(Promise);
    const reply = await pending!;
    expect(bytes(reply.message)).toBe(accepted + '00000000' + '0000000a');
  });

  test('AUTH_SYS credentials are parsed and handed to the handler', () => {
    const body = authSysBody('client.lab', 1000, 100, [4, 24]);
    const call = rawCall({ program: PROGRAM, version: 2, procedure: 4, credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: body });
    const reply = syncReply(makeDispatcher().handleCall(call, context));
    const reader = new XdrReader(reply.message.toBuffer(), { offset: 24 });
    expect(reader.readString()).toBe('client.lab:1000:4,24');
  });

  test('a repeated AUTH_SYS body is answered from the last parse, a changed one parsed again, and the verifier still checked', () => {
    const dispatcher = makeDispatcher();
    const identityOf = (body: Buffer) => {
      const call = rawCall({ program: PROGRAM, version: 2, procedure: 4, credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: body });
      const reply = syncReply(dispatcher.handleCall(call, context));
      return new XdrReader(reply.message.toBuffer(), { offset: 24 }).readString();
    };
    // A reused receive buffer: the same bytes changed in place between calls.
    const received = authSysBody('client.lab', 1000, 100, [4, 24]);
    expect(identityOf(received)).toBe('client.lab:1000:4,24');
    expect(identityOf(received)).toBe('client.lab:1000:4,24');
    received.writeUInt32BE(1001, received.length - 20);
    expect(identityOf(received)).toBe('client.lab:1001:4,24');
    expect(identityOf(authSysBody('other', 7, 7, []))).toBe('other:7:');
    // The remembered credential, with a verifier that is not AUTH_NONE: still AUTH_BADVERF (3).
    const badVerifier = rawCall({ program: PROGRAM, version: 2, procedure: 4, credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: authSysBody('other', 7, 7, []), verifierFlavor: AuthFlavor.AUTH_SYS, verifierBody: Buffer.alloc(4) });
    expect(syncReply(dispatcher.handleCall(badVerifier, context)).message.toBuffer().readUInt32BE(16)).toBe(3);
  });

  test('a bulk result stays a reference to the handler buffer, marked DDP-eligible', () => {
    const reply = syncReply(makeDispatcher().handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 5, argument: uints(0) }), context));
    expect(reply.procedure?.ddp.result).toBe(true);
    expect(reply.message.inline.toString('hex')).toBe(accepted + '00000000' + '00010000');
    expect(reply.message.bulk).toHaveLength(1);
    expect(reply.message.bulk[0]!.data).toBe(fileData);
    expect(reply.message.bulk[0]!.ddpEligible).toBe(true);
    expect(reply.message.byteLength).toBe(28 + 65536);
  });

  test('an argument delivered as a read chunk is decoded in place', () => {
    const chunk = Buffer.alloc(3000, 1);
    // The call carries the opaque length inline; the data comes from the read chunk at its XDR position.
    const call = rawCall({ program: PROGRAM, version: 2, procedure: 6, argument: uints(3000) });
    const reply = syncReply(makeDispatcher().handleCall(call, context, { readChunks: [{ position: call.length, data: chunk }] }));
    expect(bytes(reply.message)).toBe(accepted + '00000000' + uints(3000).toString('hex'));
  });
});

describe('string encoding', () => {
  test('a latin1 dispatcher passes file-name bytes through unchanged, both ways', () => {
    const dispatcher = new Dispatcher({ stringEncoding: 'latin1' });
    const echo = defineProcedure('ECHO', 1, xdrString(16), xdrString(16));
    dispatcher.addVersion(PROGRAM, { name: 'V1', version: 1, procedures: [echo] }, { ECHO: (name) => name });
    const name = Buffer.from([0x61, 0xff, 0x80, 0x62]);
    const reply = syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 1, procedure: 1, argument: Buffer.concat([uints(4), name]) }), context));
    expect(reply.message.toBuffer().subarray(28).equals(name)).toBe(true);
  });
});

describe('error replies', () => {
  test('rpcvers other than 2 is denied with RPC_MISMATCH (2, 2)', () => {
    const reply = syncReply(makeDispatcher().handleCall(rawCall({ rpcVersion: 3, program: PROGRAM, version: 2, procedure: 1 }), context));
    expect(reply.kind).toBe('RPC_MISMATCH');
    expect(bytes(reply.message)).toBe(denied + '00000000' + '00000002' + '00000002');
  });

  test('an unknown program gets PROG_UNAVAIL', () => {
    const reply = syncReply(makeDispatcher().handleCall(rawCall({ program: 99, version: 2, procedure: 1 }), context));
    expect(bytes(reply.message)).toBe(accepted + '00000001');
  });

  test('an unknown version gets PROG_MISMATCH with the lowest and highest versions served', () => {
    const reply = syncReply(makeDispatcher().handleCall(rawCall({ program: PROGRAM, version: 3, procedure: 1 }), context));
    expect(reply.kind).toBe('PROG_MISMATCH');
    expect(bytes(reply.message)).toBe(accepted + '00000002' + '00000002' + '00000004');
  });

  test('an unknown or unimplemented procedure gets PROC_UNAVAIL', () => {
    const dispatcher = makeDispatcher();
    expect(bytes(syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 77 }), context)).message)).toBe(accepted + '00000003');
    expect(bytes(syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 8 }), context)).message)).toBe(accepted + '00000003');
  });

  test('arguments that are short, or followed by extra bytes, get GARBAGE_ARGS', () => {
    const dispatcher = makeDispatcher();
    for (const argument of [Buffer.alloc(0), Buffer.alloc(2), uints(1, 2)]) {
      const reply = syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 1, argument }), context));
      expect(bytes(reply.message)).toBe(accepted + '00000004');
    }
    expect(dispatcher.metrics.replies.GARBAGE_ARGS).toBe(3);
  });

  test('a handler that throws, a rejected promise, or a result that does not fit gets SYSTEM_ERR', async () => {
    handlerErrors.length = 0;
    const dispatcher = makeDispatcher();
    expect(bytes(syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 3 }), context)).message)).toBe(accepted + '00000005');
    expect(bytes(syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 7 }), context)).message)).toBe(accepted + '00000005');
    const failing = new Dispatcher();
    failing.addVersion(PROGRAM, versionFour, { DOUBLE: async () => Promise.reject(new Error('async bug')) });
    const reply = await failing.handleCall(rawCall({ program: PROGRAM, version: 4, procedure: 1, argument: uints(1) }), context)!;
    expect(bytes(reply.message)).toBe(accepted + '00000005');
    expect(handlerErrors).toHaveLength(2);
  });

  test('a handler may declare its arguments garbage', () => {
    const dispatcher = new Dispatcher();
    dispatcher.addVersion(PROGRAM, versionFour, {
      DOUBLE: () => {
        throw new OncRpcError(OncRpcErrorCode.GARBAGE_ARGS, 'semantically invalid');
      },
    });
    const reply = syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 4, procedure: 1, argument: uints(1) }), context));
    expect(bytes(reply.message)).toBe(accepted + '00000004');
  });
});

describe('authentication errors', () => {
  const authError = (status: number): string => denied + '00000001' + uints(status).toString('hex');
  const call = (overrides: Partial<Parameters<typeof rawCall>[0]>): string =>
    bytes(syncReply(makeDispatcher().handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 1, argument: uints(1), ...overrides }), context)).message);

  test('AUTH_SYS within the limits is accepted: 255-byte machine name, 16 gids', () => {
    const body = authSysBody('m'.repeat(255), 0, 0, Array.from({ length: 16 }, (_, index) => index));
    expect(call({ credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: body })).toBe(accepted + '00000000' + '00000002');
  });

  test('a machine name over 255 bytes or more than 16 gids is AUTH_BADCRED', () => {
    expect(call({ credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: authSysBody('m'.repeat(256), 0, 0, []) })).toBe(authError(1));
    const seventeen = Array.from({ length: 17 }, (_, index) => index);
    expect(call({ credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: authSysBody('host', 0, 0, seventeen) })).toBe(authError(1));
  });

  test('a truncated AUTH_SYS body, or one with trailing bytes, is AUTH_BADCRED', () => {
    const body = authSysBody('host', 1, 1, [1]);
    expect(call({ credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: body.subarray(0, body.length - 4) })).toBe(authError(1));
    expect(call({ credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: Buffer.concat([body, uints(0)]) })).toBe(authError(1));
  });

  test('a credential body over 400 bytes is AUTH_BADCRED', () => {
    expect(call({ credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: Buffer.alloc(404) })).toBe(authError(1));
  });

  test('an unknown flavor, or AUTH_NONE with a body, is AUTH_BADCRED', () => {
    expect(call({ credentialFlavor: AuthFlavor.AUTH_DH, credentialBody: Buffer.alloc(8) })).toBe(authError(1));
    expect(call({ credentialBody: Buffer.alloc(4) })).toBe(authError(1));
  });

  test('a verifier that is not AUTH_NONE is AUTH_BADVERF', () => {
    expect(call({ verifierFlavor: AuthFlavor.AUTH_SYS, verifierBody: Buffer.alloc(4) })).toBe(authError(3));
  });

  test('a flavor the program does not accept is AUTH_TOOWEAK', () => {
    const dispatcher = new Dispatcher();
    dispatcher.addVersion(PROGRAM, versionFour, { DOUBLE: (value) => value }, { acceptedFlavors: [AuthFlavor.AUTH_SYS] });
    const reply = syncReply(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 4, procedure: 1, argument: uints(1) }), context));
    expect(bytes(reply.message)).toBe(authError(5));
  });
});

describe('messages that cannot be answered are dropped', () => {
  test('too short for an xid, a REPLY, or a header cut before the credential', () => {
    const dispatcher = makeDispatcher();
    expect(dispatcher.handleCall(Buffer.alloc(7), context)).toBeNull();
    expect(dispatcher.handleCall(rawCall({ messageType: 1, program: PROGRAM, version: 2, procedure: 1 }), context)).toBeNull();
    expect(dispatcher.handleCall(rawCall({ program: PROGRAM, version: 2, procedure: 1 }).subarray(0, 20), context)).toBeNull();
    expect(dispatcher.metrics.dropped).toBe(3);
  });

  test('registering one version twice is refused', () => {
    expect(() => makeDispatcher().addVersion(PROGRAM, versionFour, {})).toThrow(expect.objectContaining({ code: OncRpcErrorCode.BAD_REGISTRATION }));
  });
});

describe('mutated calls (the short version of `pnpm fuzz`)', () => {
  test('2 000 damaged calls each end in a well-formed reply with their xid, or a drop', () => {
    let seed = 0x2545f491;
    const random = (limit: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % limit;
    };
    const dispatcher = makeDispatcher();
    const seeds = [
      rawCall({ program: PROGRAM, version: 2, procedure: 1, argument: uints(3) }),
      rawCall({ program: PROGRAM, version: 2, procedure: 6, argument: Buffer.concat([uints(5), Buffer.from('abcde\0\0\0')]) }),
      rawCall({ program: PROGRAM, version: 2, procedure: 4, credentialFlavor: AuthFlavor.AUTH_SYS, credentialBody: authSysBody('h', 1, 2, [3]) }),
    ];
    for (let index = 0; index < 2000; index++) {
      const call = Buffer.from(seeds[random(seeds.length)]!);
      if (random(2) === 0) call.writeUInt32BE([0, 0xffffffff, 401, 17][random(4)]!, random(call.length >>> 2) * 4);
      else call[random(call.length)] ^= 1 << random(8);
      const truncated = call.subarray(0, random(4) === 0 ? random(call.length) : call.length);
      const reply = dispatcher.handleCall(truncated, context);
      if (reply === null) continue;
      const message = syncReply(reply).message.toBuffer();
      expect(message.readUInt32BE(0)).toBe(truncated.readUInt32BE(0));
      expect(message.readUInt32BE(4)).toBe(1);
    }
    expect(dispatcher.metrics.calls).toBe(2000);
  });
});
