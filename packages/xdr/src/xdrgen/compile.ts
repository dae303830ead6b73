/**
 * The xdrgen API: interface source in, TypeScript module out. Reads `#include`d
 * headers (for `#define`d opcodes in `.xg` files) from the including file's
 * folder, then from `includeDirectories`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { InterfaceSpec, ValueRef } from './ast.js';
import { ModuleEmitter } from './emit-module.js';
import { scanPreprocessorLines, tokenize } from './lexer.js';
import { defineValue, InterfaceModel } from './model.js';
import { Parser } from './parser.js';

export interface CompileOptions {
  /** Name used in messages and in the generated header; also the base for includes. */
  fileName?: string;
  /** Folders searched for `#include`d headers after the file's own folder. */
  includeDirectories?: readonly string[];
  /** Where the generated module imports the runtime from. */
  runtimeImport?: string;
  /** Variable-length opaques at least this long (or unbounded) are DDP-eligible. */
  ddpMinimumBytes?: number;
  /** Extra `#define`s, e.g. opcodes from a header that is not available. */
  defines?: Readonly<Record<string, number>>;
}

export interface CompileResult {
  /** The generated TypeScript module. */
  code: string;
  model: InterfaceModel;
  /** Included headers that were not found (only a problem if a constant stays undefined). */
  missingIncludes: string[];
}

const defaultCompileOptions = {
  fileName: '<input>',
  includeDirectories: [] as readonly string[],
  runtimeImport: '@roce-rpc/xdr',
  // RFC 8267 leaves the choice to the binding; 1 KiB keeps small opaques
  // (file handles, verifiers) inline and moves payloads (READ/WRITE data).
  ddpMinimumBytes: 1024,
};

/** Bound on nested #include files, against include cycles. */
const includeDepthMax = 8;

export function parseInterface(source: string, options: CompileOptions = {}): { spec: InterfaceSpec; missingIncludes: string[] } {
  const fileName = options.fileName ?? defaultCompileOptions.fileName;
  const defines = new Map<string, ValueRef>();
  const missingIncludes: string[] = [];
  collectDefines(source, dirname(fileName), options.includeDirectories ?? [], defines, missingIncludes, 0);
  for (const [name, value] of Object.entries(options.defines ?? {})) defines.set(name, { kind: 'literal', value });
  const definitions = new Parser(tokenize(source, fileName), fileName).parse();
  return { spec: { fileName, definitions, defines }, missingIncludes };
}

export function compileInterface(source: string, options: CompileOptions = {}): CompileResult {
  const { spec, missingIncludes } = parseInterface(source, options);
  const model = new InterfaceModel(spec);
  const emitter = new ModuleEmitter(model, {
    runtimeImport: options.runtimeImport ?? defaultCompileOptions.runtimeImport,
    ddpMinimumBytes: options.ddpMinimumBytes ?? defaultCompileOptions.ddpMinimumBytes,
  });
  return { code: emitter.emit(), model, missingIncludes };
}

export function compileFile(path: string, options: Omit<CompileOptions, 'fileName'> = {}): CompileResult {
  return compileInterface(readFileSync(path, 'utf8'), { ...options, fileName: path });
}

function collectDefines(
  source: string,
  folder: string,
  includeDirectories: readonly string[],
  defines: Map<string, ValueRef>,
  missing: string[],
  depth: number,
): void {
  const lines = scanPreprocessorLines(source);
  for (const [name, text] of lines.defines) {
    const value = defineValue(text);
    if (value !== null) defines.set(name, value);
  }
  if (depth >= includeDepthMax) return;
  for (const include of lines.includes) {
    const found = [folder, ...includeDirectories].map((directory) => join(directory, include)).find((candidate) => existsSync(candidate));
    if (found === undefined) {
      missing.push(include);
      continue;
    }
    collectDefines(readFileSync(found, 'utf8'), dirname(found), includeDirectories, defines, missing, depth + 1);
  }
}
