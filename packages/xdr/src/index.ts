export { XdrError, XdrErrorCode, isXdrError } from './errors.js';
export { XDR_UNIT_BYTES, XDR_LENGTH_MAX, xdrPadding, xdrPaddedLength } from './wire.js';
export { XdrWriter, type XdrWriterOptions } from './writer.js';
export { XdrReader, type XdrReaderOptions, type XdrReadChunk, type XdrStringEncoding } from './reader.js';
export { XdrEncoding, type XdrBulkItem } from './encoding.js';
export {
  type XdrCodec,
  type XdrValue,
  xdrVoid,
  xdrInt,
  xdrUint,
  xdrHyper,
  xdrUhyper,
  xdrBool,
  xdrFloat,
  xdrDouble,
  xdrString,
  xdrVariableOpaque,
  xdrFixedOpaque,
  xdrVariableArray,
  xdrFixedArray,
  xdrOptional,
  xdrStruct,
  decodeWhole,
} from './codec.js';
export type * from './descriptor.js';
export { procedureNamed } from './descriptor.js';
export * from './xdrgen/index.js';
