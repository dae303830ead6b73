/**
 * Runs the text service with @roce-rpc/server: the same flags, config file
 * and ROCE_RPC_* variables as roce-rpc-server (see its --help), with this
 * package's service as the default.
 */
import { fileURLToPath } from 'node:url';
import { Supervisor, resolveCommandLine } from '@roce-rpc/server';

const service = fileURLToPath(new URL('./text-service.js', import.meta.url));
let resolved;
try {
  resolved = resolveCommandLine(['--service', service, ...process.argv.slice(2)]);
} catch (error) {
  process.stderr.write(`text-service: ${(error as Error).message}\n`);
  process.exit(2);
}
const supervisor = new Supervisor(resolved.options);
const stop = (): void => void supervisor.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
const listening = await supervisor.start();
supervisor.log.info({ tcp: listening.tcp, udp: listening.udp, rdma: listening.rdma, metrics: listening.metrics }, 'listening');
