/**
 * Recursive-descent parser from tokens to an InterfaceSpec. One Parser per file;
 * it keeps the rxgen state that the grammar makes sequential (current package,
 * next automatic opcode is computed later by the model).
 */
import type {
  Declaration,
  Definition,
  EnumValue,
  PrimitiveKind,
  ProcedureDefinition,
  RxDirection,
  RxParameter,
  TypeSpec,
  UnionArm,
  ValueRef,
  VersionDefinition,
} from './ast.js';
import { XdrgenError, XdrgenErrorCode } from './errors.js';
import { parseIntegerLiteral, type Token } from './lexer.js';

type DeclarationContext = 'field' | 'typedef' | 'union' | 'parameter';

const rxDirections = new Set(['IN', 'OUT', 'INOUT']);

/** Type names every rpcgen/rxgen dialect knows, as the primitive they encode as. */
const primitiveNames: ReadonlyMap<string, PrimitiveKind> = new Map([
  ['int', 'int'], ['long', 'int'], ['short', 'int'], ['char', 'int'],
  ['hyper', 'hyper'], ['float', 'float'], ['double', 'double'], ['bool', 'bool'], ['void', 'void'],
  ['afs_int32', 'int'], ['afs_uint32', 'uint'], ['afs_int16', 'int'], ['afs_uint16', 'uint'],
  ['afs_int64', 'hyper'], ['afs_uint64', 'uhyper'], ['afs_int8', 'int'], ['afs_uint8', 'uint'],
  ['int32_t', 'int'], ['uint32_t', 'uint'], ['int64_t', 'hyper'], ['uint64_t', 'uhyper'],
  ['u_int', 'uint'], ['u_long', 'uint'], ['u_short', 'uint'], ['u_char', 'uint'], ['bool_t', 'bool'],
]);

const unsignedOf: Partial<Record<PrimitiveKind, PrimitiveKind>> = { int: 'uint', hyper: 'uhyper', uint: 'uint', uhyper: 'uhyper' };

export class Parser {
  private position = 0;
  private readonly definitions: Definition[] = [];
  private anonymousTypes = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly fileName: string,
  ) {}

  parse(): Definition[] {
    while (this.peek().kind !== 'end') {
      if (this.acceptPunctuation(';')) continue;
      this.parseDefinition();
    }
    return this.definitions;
  }

  private parseDefinition(): void {
    const token = this.peek();
    const line = token.line;
    if (token.kind === 'punctuation' && token.text === '(') return this.parseRxProc(line, '');
    const keyword = this.expectIdentifier();
    switch (keyword) {
      case 'const': {
        const name = this.expectIdentifier();
        this.expect('=');
        this.add({ kind: 'const', name, value: this.parseValue(), line });
        this.expect(';');
        return;
      }
      case 'typedef': {
        const declaration = this.parseDeclaration('typedef', 'typedef');
        if (declaration.kind === 'void') this.fail(XdrgenErrorCode.SYNTAX, 'typedef of void');
        this.add({ kind: 'typedef', name: declaration.name, declaration, line });
        this.expect(';');
        return;
      }
      case 'enum': {
        const name = this.expectIdentifier();
        this.add({ kind: 'enum', name, values: this.parseEnumBody(), line });
        this.expect(';');
        return;
      }
      case 'struct': {
        const name = this.expectIdentifier();
        this.add({ kind: 'struct', name, fields: this.parseStructBody(name), line });
        this.expect(';');
        return;
      }
      case 'union': {
        const name = this.expectIdentifier();
        this.add({ kind: 'union', name, ...this.parseUnionBody(name), line });
        this.expect(';');
        return;
      }
      case 'program':
        return this.parseProgram(line);
      case 'package':
        this.add({ kind: 'rxPackage', name: this.expectIdentifier(), line });
        return;
      case 'prefix':
        this.add({ kind: 'rxServerPrefix', name: this.expectIdentifier(), line });
        return;
      case 'statindex':
        this.add({ kind: 'rxStatIndex', value: this.parseValue(), line });
        return;
      case 'startingopcode':
        this.add({ kind: 'rxStartingOpcode', value: this.parseValue(), line });
        return;
      case 'splitprefix':
        // Names of the generated C split stubs (StartX/EndX): nothing to do for us.
        while (!this.acceptPunctuation(';')) this.next();
        return;
      case 'proc': {
        const name = this.peek().kind === 'identifier' ? this.expectIdentifier() : '';
        return this.parseRxProc(line, name);
      }
      case 'customized':
      case 'special':
        return this.fail(XdrgenErrorCode.UNSUPPORTED, `rxgen '${keyword}' definitions are not supported`);
      default:
        return this.parseRxProc(line, keyword);
    }
  }

  private parseEnumBody(): EnumValue[] {
    this.expect('{');
    const values: EnumValue[] = [];
    do {
      const name = this.expectIdentifier();
      const value = this.acceptPunctuation('=') ? this.parseValue() : null;
      values.push({ name, value });
    } while (this.acceptPunctuation(','));
    this.expect('}');
    return values;
  }

  private parseStructBody(ownerName: string): Declaration[] {
    this.expect('{');
    const fields: Declaration[] = [];
    while (!this.acceptPunctuation('}')) {
      fields.push(this.parseDeclaration('field', ownerName));
      this.expect(';');
    }
    if (fields.length === 0) this.fail(XdrgenErrorCode.SYNTAX, `struct ${ownerName} has no fields`);
    return fields;
  }

  private parseUnionBody(ownerName: string): { discriminant: Declaration; arms: UnionArm[]; defaultArm: Declaration | null } {
    this.expectKeyword('switch');
    this.expect('(');
    const discriminant = this.parseDeclaration('field', ownerName);
    this.expect(')');
    this.expect('{');
    const arms: UnionArm[] = [];
    let defaultArm: Declaration | null = null;
    while (!this.acceptPunctuation('}')) {
      if (this.acceptKeyword('default')) {
        this.expect(':');
        defaultArm = this.parseDeclaration('union', ownerName);
        this.expect(';');
        continue;
      }
      const cases: ValueRef[] = [];
      while (this.acceptKeyword('case')) {
        cases.push(this.parseValue());
        this.expect(':');
      }
      if (cases.length === 0) this.fail(XdrgenErrorCode.SYNTAX, `expected 'case' or 'default' in union ${ownerName}`);
      arms.push({ cases, declaration: this.parseDeclaration('union', ownerName) });
      this.expect(';');
    }
    return { discriminant, arms, defaultArm };
  }

  private parseProgram(line: number): void {
    const name = this.expectIdentifier();
    this.expect('{');
    const versions: VersionDefinition[] = [];
    while (this.acceptKeyword('version')) {
      const versionName = this.expectIdentifier();
      this.expect('{');
      const procedures: ProcedureDefinition[] = [];
      while (!this.acceptPunctuation('}')) procedures.push(this.parseProcedure(`${name}_${versionName}`));
      this.expect('=');
      versions.push({ name: versionName, number: this.parseValue(), procedures });
      this.expect(';');
    }
    this.expect('}');
    this.expect('=');
    this.add({ kind: 'program', name, number: this.parseValue(), versions, line });
    this.expect(';');
  }

  private parseProcedure(ownerName: string): ProcedureDefinition {
    const resultType = this.parseProcedureType(`${ownerName}_${this.peekAhead(1)}_result`);
    const name = this.expectIdentifier();
    this.expect('(');
    const argumentTypes: TypeSpec[] = [];
    do argumentTypes.push(this.parseProcedureType(`${ownerName}_${name}_argument${argumentTypes.length + 1}`));
    while (this.acceptPunctuation(','));
    this.expect(')');
    this.expect('=');
    const number = this.parseValue();
    this.expect(';');
    const onlyVoid = argumentTypes.length === 1 && isVoid(argumentTypes[0]!);
    return { name, number, argumentTypes: onlyVoid ? [] : argumentTypes, resultType };
  }

  /** rpcgen lets a procedure take or return a bare `string`: hoisted into a typedef. */
  private parseProcedureType(hoistName: string): TypeSpec {
    const token = this.peek();
    if (token.kind !== 'identifier' || token.text !== 'string') return this.parseTypeSpec(hoistName);
    this.next();
    this.add({ kind: 'typedef', name: hoistName, declaration: { kind: 'string', name: hoistName, max: null }, line: token.line });
    return { kind: 'named', name: hoistName };
  }

  /** rxgen: `Name [ServerStub] ( params ) [split] [multi] [= opcode] ;` */
  private parseRxProc(line: number, name: string): void {
    if (name === '') this.fail(XdrgenErrorCode.UNSUPPORTED, 'procedures without a name are not supported');
    if (this.peek().kind === 'identifier') this.expectIdentifier(); // server stub name: C only
    this.expect('(');
    const parameters: RxParameter[] = [];
    let direction: RxDirection = 'IN';
    while (!this.acceptPunctuation(')')) {
      const token = this.peek();
      if (token.kind === 'identifier' && rxDirections.has(token.text)) direction = this.expectIdentifier() as RxDirection;
      const declaration = this.parseDeclaration('parameter', `${name}_parameter`);
      if (declaration.kind === 'void') this.fail(XdrgenErrorCode.SYNTAX, `void parameter in ${name}`);
      parameters.push({ direction, declaration });
      if (!this.acceptPunctuation(',')) {
        this.expect(')');
        break;
      }
    }
    let split = false;
    for (;;) {
      if (this.acceptKeyword('split')) split = true;
      else if (!this.acceptKeyword('multi')) break;
    }
    const opcode = this.acceptPunctuation('=') ? this.parseValue() : null;
    this.expect(';');
    this.add({ kind: 'rxProc', name, parameters, split, opcode, line });
  }

  private parseDeclaration(context: DeclarationContext, ownerName: string): Declaration {
    const token = this.peek();
    if (token.kind === 'identifier' && token.text === 'opaque') {
      this.next();
      const name = this.expectIdentifier();
      if (this.acceptPunctuation('[')) return { kind: 'fixedOpaque', name, length: this.parseBound(']') };
      if (this.acceptPunctuation('<')) return { kind: 'variableOpaque', name, max: this.parseOptionalBound() };
      return this.fail(XdrgenErrorCode.SYNTAX, `opaque ${name} needs [n] or <max>`);
    }
    if (token.kind === 'identifier' && token.text === 'string') {
      this.next();
      if (context === 'parameter') this.acceptPunctuation('*');
      const name = this.expectIdentifier();
      if (!this.acceptPunctuation('<')) {
        if (context === 'parameter') return { kind: 'string', name, max: null };
        return this.fail(XdrgenErrorCode.SYNTAX, `string ${name} needs <max>`);
      }
      return { kind: 'string', name, max: this.parseOptionalBound() };
    }
    const type = this.parseTypeSpec(`${ownerName}_${this.anonymousTypes + 1}`);
    if (isVoid(type)) {
      if (context !== 'union') this.fail(XdrgenErrorCode.SYNTAX, 'void is only allowed as a union arm');
      return { kind: 'void' };
    }
    if (this.acceptPunctuation('*')) {
      const name = this.expectIdentifier();
      // In an rxgen parameter list `*` is C's by-reference, not XDR optional-data.
      return context === 'parameter' ? { kind: 'plain', name, type } : { kind: 'optional', name, type };
    }
    const name = this.expectIdentifier();
    if (this.acceptPunctuation('[')) return { kind: 'fixedArray', name, type, length: this.parseBound(']') };
    if (this.acceptPunctuation('<')) return { kind: 'variableArray', name, type, max: this.parseOptionalBound() };
    return { kind: 'plain', name, type };
  }

  private parseTypeSpec(hoistName: string): TypeSpec {
    const word = this.expectIdentifier();
    if (word === 'unsigned') {
      const next = this.peek();
      if (next.kind === 'identifier' && primitiveNames.has(next.text)) {
        const base = primitiveNames.get(this.expectIdentifier())!;
        const unsigned = unsignedOf[base];
        if (unsigned === undefined) this.fail(XdrgenErrorCode.SYNTAX, `'unsigned ${next.text}' is not a type`);
        return primitive(unsigned);
      }
      return primitive('uint');
    }
    if (word === 'quadruple') return this.fail(XdrgenErrorCode.UNSUPPORTED, 'quadruple is not supported');
    if (word === 'enum' || word === 'struct' || word === 'union') return this.parseTaggedType(word, hoistName);
    if (word === 'afsUUID') return { kind: 'named', name: 'afsUUID' };
    const known = primitiveNames.get(word);
    if (known !== undefined) {
      // `short int`, `long int`
      if ((word === 'short' || word === 'long') && this.peek().text === 'int') this.next();
      return primitive(known);
    }
    return { kind: 'named', name: word };
  }

  /** `struct NAME` is a reference; `struct [NAME] { ... }` defines (and hoists) a type. */
  private parseTaggedType(word: 'enum' | 'struct' | 'union', hoistName: string): TypeSpec {
    let name = hoistName;
    const line = this.peek().line;
    if (this.peek().kind === 'identifier' && this.peek().text !== 'switch') {
      name = this.expectIdentifier();
      const opens = this.peek().text === '{' || (word === 'union' && this.peek().text === 'switch');
      if (!opens) return { kind: 'named', name };
    }
    this.anonymousTypes++;
    if (word === 'enum') this.add({ kind: 'enum', name, values: this.parseEnumBody(), line });
    else if (word === 'struct') this.add({ kind: 'struct', name, fields: this.parseStructBody(name), line });
    else this.add({ kind: 'union', name, ...this.parseUnionBody(name), line });
    return { kind: 'named', name };
  }

  private parseBound(close: string): ValueRef {
    const value = this.parseValue();
    this.expect(close);
    return value;
  }

  private parseOptionalBound(): ValueRef | null {
    if (this.acceptPunctuation('>')) return null;
    return this.parseBound('>');
  }

  private parseValue(): ValueRef {
    const token = this.next();
    if (token.kind === 'identifier') return { kind: 'name', name: token.text };
    if (token.kind === 'number') {
      const value = parseIntegerLiteral(token.text);
      if (value === null) this.fail(XdrgenErrorCode.SYNTAX, `'${token.text}' is not an integer constant`);
      return { kind: 'literal', value };
    }
    return this.fail(XdrgenErrorCode.SYNTAX, `expected a constant, found '${token.text}'`);
  }

  private add(definition: Definition): void {
    this.definitions.push(definition);
  }

  private peek(): Token {
    return this.tokens[this.position]!;
  }

  private peekAhead(distance: number): string {
    return this.tokens[Math.min(this.position + distance, this.tokens.length - 1)]!.text;
  }

  private next(): Token {
    const token = this.tokens[this.position]!;
    if (token.kind !== 'end') this.position++;
    return token;
  }

  private expect(text: string): void {
    const token = this.next();
    if (token.kind !== 'punctuation' || token.text !== text) {
      this.fail(XdrgenErrorCode.SYNTAX, `expected '${text}', found '${token.text}'`, token);
    }
  }

  private expectIdentifier(): string {
    const token = this.next();
    if (token.kind !== 'identifier') this.fail(XdrgenErrorCode.SYNTAX, `expected a name, found '${token.text}'`, token);
    return token.text;
  }

  private expectKeyword(keyword: string): void {
    if (!this.acceptKeyword(keyword)) this.fail(XdrgenErrorCode.SYNTAX, `expected '${keyword}', found '${this.peek().text}'`);
  }

  private acceptKeyword(keyword: string): boolean {
    const token = this.peek();
    if (token.kind !== 'identifier' || token.text !== keyword) return false;
    this.next();
    return true;
  }

  private acceptPunctuation(text: string): boolean {
    const token = this.peek();
    if (token.kind !== 'punctuation' || token.text !== text) return false;
    this.next();
    return true;
  }

  private fail(code: XdrgenErrorCode, message: string, token: Token = this.peek()): never {
    throw new XdrgenError(code, message, this.fileName, token.line);
  }
}

function primitive(kind: PrimitiveKind): TypeSpec {
  return { kind: 'primitive', primitive: kind };
}

function isVoid(type: TypeSpec): boolean {
  return type.kind === 'primitive' && type.primitive === 'void';
}
