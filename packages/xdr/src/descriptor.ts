/**
 * Procedure descriptor tables: what xdrgen emits for every interface and what the
 * transports consume. They are transport-neutral: the ONC RPC dispatcher (TCP and
 * RPC-over-RDMA) reads program/version/procedure numbers, RxRPC reads opcodes;
 * both read the argument/result codecs and the DDP hints. Tables are frozen
 * module-level constants, created once at load.
 */
import type { XdrCodec } from './codec.js';

/**
 * Whether an argument or result holds an opaque item eligible for direct data
 * placement (RFC 8166 §6, e.g. NFS READ data). Such items are written as
 * XdrBulkItems marked `ddpEligible`, so an RDMA transport can move them to a
 * read/write chunk instead of sending them inline.
 */
export interface DdpEligibility {
  readonly argument: boolean;
  readonly result: boolean;
}

export interface ProcedureDescriptor<Argument = unknown, Result = unknown> {
  readonly name: string;
  readonly argument: XdrCodec<Argument>;
  readonly result: XdrCodec<Result>;
  readonly ddp: DdpEligibility;
}

/** ONC RPC (RFC 5531): procedure numbers within a program version. */
export interface OncRpcProcedureDescriptor<Argument = unknown, Result = unknown> extends ProcedureDescriptor<Argument, Result> {
  readonly procedure: number;
}

export interface OncRpcVersionDescriptor {
  readonly name: string;
  readonly version: number;
  readonly procedures: readonly OncRpcProcedureDescriptor<any, any>[];
}

export interface OncRpcProgramDescriptor {
  readonly name: string;
  readonly program: number;
  readonly versions: readonly OncRpcVersionDescriptor[];
}

export type RxParameterDirection = 'IN' | 'OUT' | 'INOUT';

export interface RxParameterDescriptor {
  readonly name: string;
  readonly direction: RxParameterDirection;
}

/**
 * RxRPC (rxgen `.xg`): one `proc`. The argument codec encodes the IN and INOUT
 * parameters in declaration order (the opcode, an int, goes first on the wire and
 * is the transport's to write); the result codec the OUT and INOUT parameters.
 * For a split procedure the caller streams raw bytes between the two.
 */
export interface RxProcedureDescriptor<Argument = unknown, Result = unknown> extends ProcedureDescriptor<Argument, Result> {
  readonly opcode: number;
  /** Package prefix + name, as rxgen names the client stub (e.g. PR_NameToID). */
  readonly qualifiedName: string;
  readonly split: boolean;
  readonly parameters: readonly RxParameterDescriptor[];
}

export interface RxPackageDescriptor {
  /** The package prefix (`package PR_`). */
  readonly name: string;
  /** The server stub prefix (`prefix S`), '' when absent. */
  readonly serverPrefix: string;
  /** `statindex`, or null. */
  readonly statIndex: number | null;
  readonly procedures: readonly RxProcedureDescriptor<any, any>[];
}

type ProcedureNamed<V extends OncRpcVersionDescriptor, Name> = Extract<V['procedures'][number], { name: Name }>;

/** A version's procedure by name, typed: `procedureNamed(NFS_V3, 'NFSPROC3_READ')` has READ's codecs. */
export function procedureNamed<V extends OncRpcVersionDescriptor, Name extends V['procedures'][number]['name']>(
  version: V,
  name: Name,
): ProcedureNamed<V, Name> {
  const found = version.procedures.find((procedure) => procedure.name === name);
  if (found === undefined) throw new RangeError(`${version.name} has no procedure ${String(name)}`);
  return found as ProcedureNamed<V, Name>;
}
