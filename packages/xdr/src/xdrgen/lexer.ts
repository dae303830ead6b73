/**
 * Tokenizer for `.x` and `.xg` files. Comments (C and C++ style) and rxgen
 * verbatim blocks (`@{ ... @}`) are skipped; lines starting with `%` are C
 * pass-through for rpcgen/rxgen and carry nothing for us; lines starting with
 * `#` are preprocessor lines, of which `#define NAME VALUE` and `#include` are
 * recorded (the `.xg` files take opcode numbers from included headers).
 */
import { XdrgenError, XdrgenErrorCode } from './errors.js';

export type TokenKind = 'identifier' | 'number' | 'punctuation' | 'string' | 'end';

export interface Token {
  kind: TokenKind;
  text: string;
  line: number;
}

export interface PreprocessorLines {
  defines: Map<string, string>;
  includes: string[];
}

const punctuation = new Set(['{', '}', '(', ')', '[', ']', '<', '>', ';', ',', ':', '=', '*']);

function isIdentifierStart(character: string): boolean {
  return /[A-Za-z_]/.test(character);
}

function isIdentifierPart(character: string): boolean {
  return /[A-Za-z0-9_]/.test(character);
}

/** Scans `#define` and `#include` lines of a source (or a C header). */
export function scanPreprocessorLines(source: string): PreprocessorLines {
  const defines = new Map<string, string>();
  const includes: string[] = [];
  for (const rawLine of source.split('\n')) {
    const line = rawLine.trim();
    const define = /^#\s*define\s+([A-Za-z_]\w*)\s+(.+?)\s*(\/\*.*)?$/.exec(line);
    if (define) defines.set(define[1]!, define[2]!.replace(/\/\/.*$/, '').trim());
    const include = /^#\s*include\s+["<]([^">]+)[">]/.exec(line);
    if (include) includes.push(include[1]!);
  }
  return { defines, includes };
}

export function tokenize(source: string, fileName: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  let line = 1;
  let atLineStart = true;
  const fail = (message: string): never => {
    throw new XdrgenError(XdrgenErrorCode.SYNTAX, message, fileName, line);
  };
  const skipTo = (terminator: string, what: string): void => {
    const end = source.indexOf(terminator, index);
    if (end < 0) fail(`unterminated ${what}`);
    for (let scan = index; scan < end; scan++) if (source[scan] === '\n') line++;
    index = end + terminator.length;
  };
  while (index < source.length) {
    const character = source[index]!;
    if (character === '\n') {
      line++;
      index++;
      atLineStart = true;
      continue;
    }
    if (atLineStart && (character === '%' || character === '#')) {
      const end = source.indexOf('\n', index);
      index = end < 0 ? source.length : end;
      continue;
    }
    if (/\s/.test(character)) {
      index++;
      continue;
    }
    atLineStart = false;
    const next = source[index + 1];
    if (character === '/' && next === '*') {
      index += 2;
      skipTo('*/', 'comment');
    } else if (character === '/' && next === '/') {
      const end = source.indexOf('\n', index);
      index = end < 0 ? source.length : end;
    } else if (character === '@' && next === '{') {
      index += 2;
      skipTo('@}', 'verbatim block');
    } else if (isIdentifierStart(character)) {
      const start = index;
      while (index < source.length && isIdentifierPart(source[index]!)) index++;
      tokens.push({ kind: 'identifier', text: source.slice(start, index), line });
    } else if (/[0-9]/.test(character) || (character === '-' && /[0-9]/.test(next ?? ''))) {
      const start = index;
      index++;
      while (index < source.length && /[0-9A-Za-z]/.test(source[index]!)) index++;
      tokens.push({ kind: 'number', text: source.slice(start, index), line });
    } else if (character === '"') {
      const start = index;
      index++;
      skipTo('"', 'string constant');
      tokens.push({ kind: 'string', text: source.slice(start + 1, index - 1), line });
    } else if (punctuation.has(character)) {
      tokens.push({ kind: 'punctuation', text: character, line });
      index++;
    } else {
      fail(`unexpected character '${character}'`);
    }
  }
  tokens.push({ kind: 'end', text: '<end of file>', line });
  return tokens;
}

/** Parses an integer literal: decimal, 0x hex, 0 octal, optional minus. */
export function parseIntegerLiteral(text: string): number | null {
  const negative = text.startsWith('-');
  const body = (negative ? text.slice(1) : text).replace(/[uUlL]+$/, '');
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) value = parseInt(body.slice(2), 16);
  else if (/^0[0-7]+$/.test(body)) value = parseInt(body.slice(1), 8);
  else if (/^[0-9]+$/.test(body)) value = parseInt(body, 10);
  else return null;
  if (!Number.isSafeInteger(value)) return null;
  return negative ? -value : value;
}
