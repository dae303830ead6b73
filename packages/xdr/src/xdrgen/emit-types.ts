/**
 * Code fragments for one declaration or type: its TypeScript type, the
 * statements that encode it and the statements that decode it. Stateless apart
 * from the model; emit-module.ts assembles fragments into a module.
 */
import type { Declaration, PrimitiveKind, TypeSpec } from './ast.js';
import type { InterfaceModel } from './model.js';

const reservedWords = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof',
  'new', 'null', 'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void',
  'while', 'with', 'let', 'static', 'yield', 'await', 'implements', 'interface', 'package', 'private',
  'protected', 'public', 'any', 'boolean', 'number', 'string', 'symbol', 'type', 'bigint', 'object',
  'never', 'unknown', 'undefined', 'xdr',
]);

/** A top-level TypeScript name for an XDR name. */
export function identifier(name: string): string {
  return reservedWords.has(name) ? `${name}_` : name;
}

const primitiveTypes: Record<PrimitiveKind, string> = {
  int: 'number', uint: 'number', float: 'number', double: 'number',
  hyper: 'bigint', uhyper: 'bigint', bool: 'boolean', void: 'void',
};

const primitiveMethods: Record<Exclude<PrimitiveKind, 'void'>, string> = {
  int: 'Int', uint: 'Uint', hyper: 'Hyper', uhyper: 'Uhyper', float: 'Float', double: 'Double', bool: 'Bool',
};

const primitiveCodecs: Record<PrimitiveKind, string> = {
  int: 'xdr.xdrInt', uint: 'xdr.xdrUint', hyper: 'xdr.xdrHyper', uhyper: 'xdr.xdrUhyper',
  float: 'xdr.xdrFloat', double: 'xdr.xdrDouble', bool: 'xdr.xdrBool', void: 'xdr.xdrVoid',
};

export class FragmentEmitter {
  constructor(
    private readonly model: InterfaceModel,
    private readonly ddpMinimumBytes: number,
  ) {}

  typeOf(type: TypeSpec): string {
    if (type.kind === 'primitive') return primitiveTypes[type.primitive];
    this.model.typeDefinition(type.name);
    return identifier(type.name);
  }

  declarationType(declaration: Declaration): string {
    switch (declaration.kind) {
      case 'void':
        return 'void';
      case 'plain':
        return this.typeOf(declaration.type);
      case 'optional':
        return `${this.typeOf(declaration.type)} | null`;
      case 'fixedArray':
      case 'variableArray':
        return `${this.typeOf(declaration.type)}[]`;
      case 'fixedOpaque':
      case 'variableOpaque':
        return 'Uint8Array';
      case 'string':
        return 'string';
    }
  }

  codecOf(type: TypeSpec): string {
    if (type.kind === 'primitive') return primitiveCodecs[type.primitive];
    this.model.typeDefinition(type.name);
    return `${identifier(type.name)}_codec`;
  }

  encodeType(type: TypeSpec, value: string): string {
    if (type.kind === 'named') return `encode_${identifier(type.name)}(writer, ${value});`;
    if (type.primitive === 'void') return '';
    return `writer.write${primitiveMethods[type.primitive]}(${value});`;
  }

  decodeType(type: TypeSpec): string {
    if (type.kind === 'named') return `decode_${identifier(type.name)}(reader)`;
    if (type.primitive === 'void') return 'undefined';
    return `reader.read${primitiveMethods[type.primitive]}()`;
  }

  /** Statements writing `value` (an expression) as `declaration`. */
  encodeDeclaration(declaration: Declaration, value: string): string[] {
    switch (declaration.kind) {
      case 'void':
        return [];
      case 'plain':
        return [this.encodeType(declaration.type, value)];
      case 'optional':
        return [`writer.writeOptionalFlag(${value} !== null);`, `if (${value} !== null) ${this.encodeType(declaration.type, value)}`];
      case 'fixedArray': {
        const length = this.model.resolveValue(declaration.length);
        return [
          `if (${value}.length !== ${length}) throw new xdr.XdrError(xdr.XdrErrorCode.BAD_VALUE, '${declaration.name} needs exactly ${length} elements', writer.byteLength);`,
          `for (const element of ${value}) ${this.encodeType(declaration.type, 'element')}`,
        ];
      }
      case 'variableArray':
        return [
          `writer.writeArrayLength(${value}.length, ${this.maxOf(declaration.max)});`,
          `for (const element of ${value}) ${this.encodeType(declaration.type, 'element')}`,
        ];
      case 'fixedOpaque':
        return [`writer.writeFixedOpaque(${value}, ${this.model.resolveValue(declaration.length)});`];
      case 'variableOpaque': {
        const ddp = this.model.isBulkOpaque(declaration, this.ddpMinimumBytes);
        return [`writer.writeVariableOpaque(${value}, ${this.maxOf(declaration.max)}${ddp ? ', true' : ''});`];
      }
      case 'string':
        return [`writer.writeString(${value}, ${this.maxOf(declaration.max)});`];
    }
  }

  /** Statements declaring a local `target` holding the decoded `declaration`. */
  decodeDeclaration(declaration: Declaration, target: string): string[] {
    switch (declaration.kind) {
      case 'void':
        return [];
      case 'plain':
        return [`const ${target} = ${this.decodeType(declaration.type)};`];
      case 'optional':
        return [
          `let ${target}: ${this.typeOf(declaration.type)} | null = null;`,
          `if (reader.readOptionalFlag()) {`,
          `  reader.enter();`,
          `  ${target} = ${this.decodeType(declaration.type)};`,
          `  reader.leave();`,
          `}`,
        ];
      case 'fixedArray': {
        const length = this.model.resolveValue(declaration.length);
        return this.decodeArray(declaration.type, target, `${length}`, []);
      }
      case 'variableArray':
        return this.decodeArray(declaration.type, target, `${target}_length`, [
          `const ${target}_length = reader.readArrayLength(${this.maxOf(declaration.max)});`,
        ]);
      case 'fixedOpaque':
        return [`const ${target} = reader.readFixedOpaque(${this.model.resolveValue(declaration.length)});`];
      case 'variableOpaque':
        return [`const ${target} = reader.readVariableOpaque(${this.maxOf(declaration.max)});`];
      case 'string':
        return [`const ${target} = reader.readString(${this.maxOf(declaration.max)});`];
    }
  }

  private decodeArray(type: TypeSpec, target: string, length: string, prelude: string[]): string[] {
    return [
      ...prelude,
      `const ${target} = new Array<${this.typeOf(type)}>(${length});`,
      `for (let index = 0; index < ${length}; index++) ${target}[index] = ${this.decodeType(type)};`,
    ];
  }

  private maxOf(max: Parameters<InterfaceModel['resolveValue']>[0] | null): string {
    return max === null ? '0xffffffff' : String(this.model.resolveValue(max));
  }
}
