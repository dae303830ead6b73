export { compileFile, compileInterface, parseInterface, type CompileOptions, type CompileResult } from './compile.js';
export { XdrgenError, XdrgenErrorCode } from './errors.js';
export type * from './ast.js';
