/**
 * The resolved interface: symbol tables over the parsed definitions. Resolves
 * constants (const, enum values, #define, TRUE/FALSE), follows typedefs, checks
 * that every name is defined once, and answers the questions code generation
 * asks (what a discriminant is, whether a type can carry DDP-eligible data).
 */
import type { Declaration, Definition, InterfaceSpec, TypeSpec, ValueRef } from './ast.js';
import { XdrgenError, XdrgenErrorCode } from './errors.js';
import { parseIntegerLiteral, tokenize } from './lexer.js';
import { Parser } from './parser.js';

export type TypeDefinition = Extract<Definition, { kind: 'typedef' | 'enum' | 'struct' | 'union' }>;

/** What a union discriminant switches on. */
export type DiscriminantKind = 'int' | 'uint' | 'bool' | 'enum';

/** rxgen's built-in afsUUID (an opaque-free struct of 11 XDR units), defined when first used. */
const afsUuidSource = `struct afsUUID {
  afs_uint32 time_low;
  unsigned short time_mid;
  unsigned short time_hi_and_version;
  char clock_seq_hi_and_reserved;
  char clock_seq_low;
  char node[6];
};`;

const builtinConstants: ReadonlyMap<string, number> = new Map([
  ['TRUE', 1],
  ['FALSE', 0],
]);

export class InterfaceModel {
  readonly definitions: Definition[];
  readonly types = new Map<string, TypeDefinition>();
  private readonly constantRefs = new Map<string, ValueRef>();
  private readonly enumOfValue = new Map<string, string>();

  constructor(readonly spec: InterfaceSpec) {
    this.definitions = [...spec.definitions];
    if (this.mentionsType('afsUUID') && !this.definitions.some((definition) => 'name' in definition && definition.name === 'afsUUID')) {
      const builtin = new Parser(tokenize(afsUuidSource, '<afsUUID>'), '<afsUUID>').parse();
      this.definitions.unshift(...builtin);
    }
    for (const definition of this.definitions) this.index(definition);
  }

  resolveValue(ref: ValueRef, line = 0): number {
    let current = ref;
    for (let hops = 0; hops < 32; hops++) {
      if (current.kind === 'literal') return current.value;
      const builtin = builtinConstants.get(current.name);
      const next = this.constantRefs.get(current.name);
      if (next === undefined) {
        if (builtin !== undefined) return builtin;
        const define = this.spec.defines.get(current.name);
        if (define === undefined) {
          throw new XdrgenError(XdrgenErrorCode.UNDEFINED, `unknown constant '${current.name}'`, this.spec.fileName, line);
        }
        current = define;
        continue;
      }
      current = next;
    }
    throw new XdrgenError(XdrgenErrorCode.UNDEFINED, 'constant definitions form a cycle', this.spec.fileName, line);
  }

  /** Enum values in declaration order, with implicit values (previous + 1) filled in. */
  enumValues(definition: Extract<Definition, { kind: 'enum' }>): { name: string; value: number }[] {
    let next = 0;
    return definition.values.map((entry) => {
      const value = entry.value === null ? next : this.resolveValue(entry.value, definition.line);
      next = value + 1;
      return { name: entry.name, value };
    });
  }

  typeDefinition(name: string, line = 0): TypeDefinition {
    const definition = this.types.get(name);
    if (definition === undefined) {
      throw new XdrgenError(XdrgenErrorCode.UNDEFINED, `unknown type '${name}'`, this.spec.fileName, line);
    }
    return definition;
  }

  /** Follows typedef aliases (`typedef T U;`) down to a non-alias type. */
  underlyingType(type: TypeSpec, line = 0): TypeSpec {
    let current = type;
    for (let hops = 0; current.kind === 'named' && hops < 64; hops++) {
      const definition = this.typeDefinition(current.name, line);
      if (definition.kind !== 'typedef' || definition.declaration.kind !== 'plain') return current;
      current = definition.declaration.type;
    }
    return current;
  }

  discriminantKind(declaration: Declaration, line: number): DiscriminantKind {
    if (declaration.kind !== 'plain') {
      throw new XdrgenError(XdrgenErrorCode.SYNTAX, 'a union discriminant must be a plain int, unsigned int, bool or enum', this.spec.fileName, line);
    }
    const type = this.underlyingType(declaration.type, line);
    if (type.kind === 'named') {
      if (this.typeDefinition(type.name, line).kind === 'enum') return 'enum';
    } else if (type.primitive === 'int' || type.primitive === 'uint' || type.primitive === 'bool') {
      return type.primitive;
    }
    throw new XdrgenError(XdrgenErrorCode.SYNTAX, 'a union discriminant must be an int, unsigned int, bool or enum', this.spec.fileName, line);
  }

  /** The enum that declares a value name, if any (for Exclude<> in union types). */
  enumDeclaring(valueName: string): string | undefined {
    return this.enumOfValue.get(valueName);
  }

  /**
   * True when values of `type` can hold a variable-length opaque of at least
   * `minimumBytes` (unbounded counts): such items are DDP-eligible.
   */
  carriesBulk(type: TypeSpec, minimumBytes: number, visited = new Set<string>()): boolean {
    if (type.kind === 'primitive' || visited.has(type.name)) return false;
    visited.add(type.name);
    const definition = this.typeDefinition(type.name);
    const declarations: Declaration[] =
      definition.kind === 'typedef'
        ? [definition.declaration]
        : definition.kind === 'struct'
          ? definition.fields
          : definition.kind === 'union'
            ? [...definition.arms.map((arm) => arm.declaration), ...(definition.defaultArm ? [definition.defaultArm] : [])]
            : [];
    return declarations.some((declaration) => this.declarationCarriesBulk(declaration, minimumBytes, visited));
  }

  declarationCarriesBulk(declaration: Declaration, minimumBytes: number, visited = new Set<string>()): boolean {
    switch (declaration.kind) {
      case 'variableOpaque':
        return this.isBulkOpaque(declaration, minimumBytes);
      case 'plain':
      case 'optional':
      case 'fixedArray':
      case 'variableArray':
        return this.carriesBulk(declaration.type, minimumBytes, visited);
      default:
        return false;
    }
  }

  isBulkOpaque(declaration: Extract<Declaration, { kind: 'variableOpaque' }>, minimumBytes: number): boolean {
    return declaration.max === null || this.resolveValue(declaration.max) >= minimumBytes;
  }

  private index(definition: Definition): void {
    switch (definition.kind) {
      case 'const':
        this.defineConstant(definition.name, definition.value, definition.line);
        return;
      case 'enum':
        this.defineType(definition);
        for (const entry of definition.values) {
          this.enumOfValue.set(entry.name, definition.name);
          this.defineConstant(entry.name, entry.value ?? { kind: 'literal', value: Number.NaN }, definition.line);
        }
        this.fillImplicitEnumValues(definition);
        return;
      case 'typedef':
      case 'struct':
      case 'union':
        this.defineType(definition);
        return;
      case 'program':
        // rpcgen makes program, version and procedure names constants too (RFC 1833 uses them).
        this.constantRefs.set(definition.name, definition.number);
        for (const version of definition.versions) {
          this.constantRefs.set(version.name, version.number);
          for (const procedure of version.procedures) this.constantRefs.set(procedure.name, procedure.number);
        }
        return;
      default:
        return;
    }
  }

  private fillImplicitEnumValues(definition: Extract<Definition, { kind: 'enum' }>): void {
    if (definition.values.every((entry) => entry.value !== null)) return;
    for (const entry of this.enumValues(definition)) this.constantRefs.set(entry.name, { kind: 'literal', value: entry.value });
  }

  private defineConstant(name: string, value: ValueRef, line: number): void {
    if (this.constantRefs.has(name)) {
      throw new XdrgenError(XdrgenErrorCode.DUPLICATE, `constant '${name}' is defined twice`, this.spec.fileName, line);
    }
    this.constantRefs.set(name, value);
  }

  private defineType(definition: TypeDefinition): void {
    if (this.types.has(definition.name)) {
      throw new XdrgenError(XdrgenErrorCode.DUPLICATE, `type '${definition.name}' is defined twice`, this.spec.fileName, definition.line);
    }
    this.types.set(definition.name, definition);
  }

  private mentionsType(name: string): boolean {
    const json = JSON.stringify(this.spec.definitions);
    return json.includes(`"name":"${name}"`);
  }
}

/** `#define` right-hand sides: an integer, or another name. */
export function defineValue(text: string): ValueRef | null {
  const stripped = text.replace(/^\((.*)\)$/, '$1').trim();
  const literal = parseIntegerLiteral(stripped);
  if (literal !== null) return { kind: 'literal', value: literal };
  if (/^[A-Za-z_]\w*$/.test(stripped)) return { kind: 'name', name: stripped };
  return null;
}
