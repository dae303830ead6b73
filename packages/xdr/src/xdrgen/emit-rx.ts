/**
 * rxgen packages: for every `proc`, an argument record (IN and INOUT parameters
 * in declaration order) and a result record (OUT and INOUT), their codecs, and a
 * package descriptor table with opcodes. Opcodes follow rxgen: an explicit
 * `= N`, else the next number after `startingopcode` (or the previous proc).
 */
import type { Definition } from './ast.js';
import { identifier } from './emit-types.js';
import { XdrgenError, XdrgenErrorCode } from './errors.js';
import type { ModuleEmitter } from './emit-module.js';

type RxProc = Extract<Definition, { kind: 'rxProc' }>;

interface PackageState {
  name: string;
  serverPrefix: string;
  statIndex: number | null;
  nextOpcode: number;
  entries: string[];
  opcodes: Set<number>;
}

function newPackage(name: string): PackageState {
  return { name, serverPrefix: '', statIndex: null, nextOpcode: 0, entries: [], opcodes: new Set() };
}

export function emitRxPackages(emitter: ModuleEmitter): void {
  const model = emitter.model;
  const packages: PackageState[] = [];
  let current: PackageState | null = null;
  const currentPackage = (): PackageState => {
    if (current === null) packages.push((current = newPackage('')));
    return current;
  };
  for (const definition of model.definitions) {
    switch (definition.kind) {
      case 'rxPackage':
        packages.push((current = newPackage(definition.name)));
        break;
      case 'rxServerPrefix':
        currentPackage().serverPrefix = definition.name;
        break;
      case 'rxStatIndex':
        currentPackage().statIndex = model.resolveValue(definition.value, definition.line);
        break;
      case 'rxStartingOpcode':
        currentPackage().nextOpcode = model.resolveValue(definition.value, definition.line);
        break;
      case 'rxProc':
        currentPackage().entries.push(emitProc(emitter, currentPackage(), definition));
        break;
      default:
        break;
    }
  }
  for (const state of packages) if (state.entries.length > 0 || state.name !== '') emitPackage(emitter, state);
}

function emitProc(emitter: ModuleEmitter, state: PackageState, proc: RxProc): string {
  const model = emitter.model;
  const opcode = proc.opcode === null ? state.nextOpcode : model.resolveValue(proc.opcode, proc.line);
  if (state.opcodes.has(opcode)) {
    throw new XdrgenError(XdrgenErrorCode.DUPLICATE, `opcode ${opcode} of ${proc.name} is already used`, model.spec.fileName, proc.line);
  }
  state.opcodes.add(opcode);
  state.nextOpcode = opcode + 1;
  const qualifiedName = `${state.name}${proc.name}`;
  const inputs = proc.parameters.filter((parameter) => parameter.direction !== 'OUT').map((parameter) => parameter.declaration);
  const outputs = proc.parameters.filter((parameter) => parameter.direction !== 'IN').map((parameter) => parameter.declaration);
  emitter.emitRecord(`${qualifiedName}_Arguments`, inputs);
  emitter.emitRecord(`${qualifiedName}_Results`, outputs);
  const minimum = emitter.options.ddpMinimumBytes;
  const ddpArgument = inputs.some((declaration) => model.declarationCarriesBulk(declaration, minimum));
  const ddpResult = outputs.some((declaration) => model.declarationCarriesBulk(declaration, minimum));
  const parameters = proc.parameters
    .map((parameter) => `{ name: '${parameter.declaration.kind === 'void' ? '' : parameter.declaration.name}', direction: '${parameter.direction}' }`)
    .join(', ');
  return [
    `    { name: '${proc.name}', qualifiedName: '${qualifiedName}', opcode: ${opcode}, split: ${proc.split},`,
    `      parameters: [${parameters}],`,
    `      argument: ${identifier(`${qualifiedName}_Arguments`)}_codec, result: ${identifier(`${qualifiedName}_Results`)}_codec,`,
    `      ddp: { argument: ${ddpArgument}, result: ${ddpResult} } },`,
  ].join('\n');
}

function emitPackage(emitter: ModuleEmitter, state: PackageState): void {
  const base = state.name.replace(/_$/, '') || 'RX';
  emitter.line(
    `export const ${base}_PACKAGE = {`,
    `  name: '${state.name}',`,
    `  serverPrefix: '${state.serverPrefix}',`,
    `  statIndex: ${state.statIndex === null ? 'null' : state.statIndex},`,
    '  procedures: [',
    ...state.entries,
    '  ],',
    '} as const satisfies xdr.RxPackageDescriptor;',
    '',
  );
}
