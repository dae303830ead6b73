/**
 * The server side of bench/null_rpc.bench.ts, in its own process (as the kernel's
 * svcrdma is not in the client's): serves NFSv4 NULL on PORT until stdin closes.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrVoid } from '@roce-rpc/xdr';
import { SvcRdmaServer } from '../dist/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const port = Number(process.argv[2]);
const dispatcher = new Dispatcher().addVersion(100003, { name: 'NFS4_NULL', version: 4, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
const server = SvcRdmaServer.listen(dispatcher, { address, port });
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  void server.close().then(() => process.exit(0));
});
