/**
 * A Dispatcher serving one program whose only procedure is NULL (0), for the
 * lab tests that need a server and nothing else from it.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrVoid } from '@roce-rpc/xdr';

export function nullDispatcher(program: number, version: number, name: string): Dispatcher {
  return new Dispatcher().addVersion(program, { name, version, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
}
