/**
 * The parsed form of an interface file: the XDR language (RFC 4506 §6), ONC RPC
 * program definitions (RFC 5531 §12) and the rxgen dialect of OpenAFS (`package`,
 * `prefix`, `statindex`, `startingopcode`, `splitprefix`, `proc` with IN/OUT/INOUT
 * parameters, opcodes and `split`). Inline enum/struct/union types are hoisted
 * into named definitions by the parser, so every TypeSpec here is a primitive or
 * a name.
 */

/** A constant as written: a literal or a name resolved later (const, enum value, #define). */
export type ValueRef = { kind: 'literal'; value: number } | { kind: 'name'; name: string };

export type PrimitiveKind =
  | 'int'
  | 'uint'
  | 'hyper'
  | 'uhyper'
  | 'float'
  | 'double'
  | 'bool'
  | 'void';

export type TypeSpec = { kind: 'primitive'; primitive: PrimitiveKind } | { kind: 'named'; name: string };

export type Declaration =
  | { kind: 'void' }
  | { kind: 'plain'; name: string; type: TypeSpec }
  | { kind: 'optional'; name: string; type: TypeSpec }
  | { kind: 'fixedArray'; name: string; type: TypeSpec; length: ValueRef }
  | { kind: 'variableArray'; name: string; type: TypeSpec; max: ValueRef | null }
  | { kind: 'fixedOpaque'; name: string; length: ValueRef }
  | { kind: 'variableOpaque'; name: string; max: ValueRef | null }
  | { kind: 'string'; name: string; max: ValueRef | null };

export interface EnumValue {
  name: string;
  value: ValueRef | null;
}

export interface UnionArm {
  cases: ValueRef[];
  declaration: Declaration;
}

export interface ProcedureDefinition {
  name: string;
  number: ValueRef;
  argumentTypes: TypeSpec[];
  resultType: TypeSpec;
}

export interface VersionDefinition {
  name: string;
  number: ValueRef;
  procedures: ProcedureDefinition[];
}

export type RxDirection = 'IN' | 'OUT' | 'INOUT';

export interface RxParameter {
  direction: RxDirection;
  declaration: Declaration;
}

export type Definition = { line: number } & (
  | { kind: 'const'; name: string; value: ValueRef }
  | { kind: 'typedef'; name: string; declaration: Declaration }
  | { kind: 'enum'; name: string; values: EnumValue[] }
  | { kind: 'struct'; name: string; fields: Declaration[] }
  | { kind: 'union'; name: string; discriminant: Declaration; arms: UnionArm[]; defaultArm: Declaration | null }
  | { kind: 'program'; name: string; number: ValueRef; versions: VersionDefinition[] }
  | { kind: 'rxPackage'; name: string }
  | { kind: 'rxServerPrefix'; name: string }
  | { kind: 'rxStatIndex'; value: ValueRef }
  | { kind: 'rxStartingOpcode'; value: ValueRef }
  | {
      kind: 'rxProc';
      name: string;
      parameters: RxParameter[];
      split: boolean;
      opcode: ValueRef | null;
    }
);

export interface InterfaceSpec {
  fileName: string;
  definitions: Definition[];
  /** `#define NAME VALUE` lines of the file and of the headers it includes. */
  defines: Map<string, ValueRef>;
}
