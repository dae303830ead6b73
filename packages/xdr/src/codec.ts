/**
 * XdrCodec: how one XDR type is encoded and decoded. Generated interfaces export a
 * codec per type; services written directly in TypeScript compose the codecs
 * below. Codecs are stateless singletons created at module load.
 */
import { XdrError, XdrErrorCode } from './errors.js';
import type { XdrReader } from './reader.js';
import type { XdrWriter } from './writer.js';
import { XDR_LENGTH_MAX } from './wire.js';

export interface XdrCodec<T> {
  /** The XDR type name, for messages and descriptors. */
  readonly name: string;
  encode(writer: XdrWriter, value: T): void;
  decode(reader: XdrReader): T;
}

/** The TypeScript value type of a codec. */
export type XdrValue<C> = C extends XdrCodec<infer T> ? T : never;

export const xdrVoid: XdrCodec<void> = {
  name: 'void',
  encode() {},
  decode() {},
};

export const xdrInt: XdrCodec<number> = {
  name: 'int',
  encode: (writer, value) => writer.writeInt(value),
  decode: (reader) => reader.readInt(),
};

export const xdrUint: XdrCodec<number> = {
  name: 'unsigned int',
  encode: (writer, value) => writer.writeUint(value),
  decode: (reader) => reader.readUint(),
};

export const xdrHyper: XdrCodec<bigint> = {
  name: 'hyper',
  encode: (writer, value) => writer.writeHyper(value),
  decode: (reader) => reader.readHyper(),
};

export const xdrUhyper: XdrCodec<bigint> = {
  name: 'unsigned hyper',
  encode: (writer, value) => writer.writeUhyper(value),
  decode: (reader) => reader.readUhyper(),
};

export const xdrBool: XdrCodec<boolean> = {
  name: 'bool',
  encode: (writer, value) => writer.writeBool(value),
  decode: (reader) => reader.readBool(),
};

export const xdrFloat: XdrCodec<number> = {
  name: 'float',
  encode: (writer, value) => writer.writeFloat(value),
  decode: (reader) => reader.readFloat(),
};

export const xdrDouble: XdrCodec<number> = {
  name: 'double',
  encode: (writer, value) => writer.writeDouble(value),
  decode: (reader) => reader.readDouble(),
};

export function xdrString(max: number = XDR_LENGTH_MAX): XdrCodec<string> {
  return {
    name: `string<${max}>`,
    encode: (writer, value) => writer.writeString(value, max),
    decode: (reader) => reader.readString(max),
  };
}

export function xdrVariableOpaque(max: number = XDR_LENGTH_MAX, ddpEligible = false): XdrCodec<Uint8Array> {
  return {
    name: `opaque<${max}>`,
    encode: (writer, value) => writer.writeVariableOpaque(value, max, ddpEligible),
    decode: (reader) => reader.readVariableOpaque(max),
  };
}

export function xdrFixedOpaque(length: number): XdrCodec<Uint8Array> {
  return {
    name: `opaque[${length}]`,
    encode: (writer, value) => writer.writeFixedOpaque(value, length),
    decode: (reader) => reader.readFixedOpaque(length),
  };
}

export function xdrVariableArray<T>(element: XdrCodec<T>, max: number = XDR_LENGTH_MAX): XdrCodec<T[]> {
  return {
    name: `${element.name}<${max}>`,
    encode(writer, values) {
      writer.writeArrayLength(values.length, max);
      for (const value of values) element.encode(writer, value);
    },
    decode(reader) {
      const length = reader.readArrayLength(max);
      const values = new Array<T>(length);
      for (let index = 0; index < length; index++) values[index] = element.decode(reader);
      return values;
    },
  };
}

export function xdrFixedArray<T>(element: XdrCodec<T>, length: number): XdrCodec<T[]> {
  return {
    name: `${element.name}[${length}]`,
    encode(writer, values) {
      if (values.length !== length) {
        throw new XdrError(XdrErrorCode.BAD_VALUE, `${element.name}[${length}] needs exactly ${length} elements`, writer.byteLength);
      }
      for (const value of values) element.encode(writer, value);
    },
    decode(reader) {
      const values = new Array<T>(length);
      for (let index = 0; index < length; index++) values[index] = element.decode(reader);
      return values;
    },
  };
}

export function xdrOptional<T>(element: XdrCodec<T>): XdrCodec<T | null> {
  return {
    name: `*${element.name}`,
    encode(writer, value) {
      writer.writeOptionalFlag(value !== null);
      if (value !== null) element.encode(writer, value);
    },
    decode(reader) {
      if (!reader.readOptionalFlag()) return null;
      reader.enter();
      const value = element.decode(reader);
      reader.leave();
      return value;
    },
  };
}

type StructFields<T> = { readonly [K in keyof T]: XdrCodec<T[K]> };

/** A struct from an ordered field list: the object's key order is the wire order. */
export function xdrStruct<T extends object>(name: string, fields: StructFields<T>): XdrCodec<T> {
  const entries = Object.entries(fields) as [keyof T & string, XdrCodec<unknown>][];
  return {
    name,
    encode(writer, value) {
      for (const [field, codec] of entries) codec.encode(writer, value[field]);
    },
    decode(reader) {
      const value = {} as Record<string, unknown>;
      for (const [field, codec] of entries) value[field] = codec.decode(reader);
      return value as T;
    },
  };
}

/** Decodes a whole message: every byte must be consumed. */
export function decodeWhole<T>(codec: XdrCodec<T>, reader: XdrReader): T {
  const value = codec.decode(reader);
  reader.assertFinished();
  return value;
}
