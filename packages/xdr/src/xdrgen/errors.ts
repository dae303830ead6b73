/** Interface-compiler errors, with the file and line they point at. */

export const XdrgenErrorCode = {
  SYNTAX: 'ERR_XDRGEN_SYNTAX',
  UNDEFINED: 'ERR_XDRGEN_UNDEFINED',
  DUPLICATE: 'ERR_XDRGEN_DUPLICATE',
  UNSUPPORTED: 'ERR_XDRGEN_UNSUPPORTED',
} as const;

export type XdrgenErrorCode = (typeof XdrgenErrorCode)[keyof typeof XdrgenErrorCode];

export class XdrgenError extends Error {
  readonly code: XdrgenErrorCode;
  readonly fileName: string;
  readonly line: number;

  constructor(code: XdrgenErrorCode, message: string, fileName: string, line: number) {
    super(`${fileName}:${line}: ${message}`);
    this.name = 'XdrgenError';
    this.code = code;
    this.fileName = fileName;
    this.line = line;
  }
}
