/**
 * A small text service: the consumer's own procedures, typed with the XDR
 * codecs, served by @roce-rpc/server over ONC RPC/TCP, RxRPC/UDP (and RDMA
 * where a device exists). Stateless, so any worker thread of any process
 * may answer any call.
 */
import { defineService } from '@roce-rpc/server';
import { xdrInt, xdrString, xdrStruct, xdrUint, xdrVariableArray, xdrVoid } from '@roce-rpc/xdr';

/** Longest text accepted: bounds one call's memory. */
export const TEXT_BYTES_MAX = 16 * 1024;
/** Most numbers SUM adds in one call. */
export const NUMBERS_MAX = 4096;

const textStatistics = xdrStruct('text_statistics', { characters: xdrUint, words: xdrUint, lines: xdrUint });

export default defineService({
  name: 'text',
  program: 0x2000_0a01,
  version: 1,
  rxServiceId: 2701,
  procedures: {
    null: { number: 0, argument: xdrVoid, result: xdrVoid, handler: () => undefined },
    reverse: { number: 1, argument: xdrString(TEXT_BYTES_MAX), result: xdrString(TEXT_BYTES_MAX), handler: (text: string) => [...text].reverse().join('') },
    statistics: {
      number: 2,
      argument: xdrString(TEXT_BYTES_MAX),
      result: textStatistics,
      handler: (text: string) => ({
        characters: [...text].length,
        words: text.split(/\s+/).filter((word) => word.length > 0).length,
        lines: text.length === 0 ? 0 : text.split('\n').length,
      }),
    },
    sum: {
      number: 3,
      argument: xdrVariableArray(xdrInt, NUMBERS_MAX),
      result: xdrInt,
      handler: (numbers: number[]) => numbers.reduce((total, number) => (total + number) | 0, 0),
    },
  },
});
