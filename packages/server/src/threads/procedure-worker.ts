/**
 * Entry point of a procedure worker thread (piscina), the nfsd-like thread
 * that runs a service's handlers for TCP and RDMA calls.
 *
 * Life: piscina starts it with the process's pool and may replace it; it
 * imports the service and runs init() once, then runs one task at a time.
 * A handler that throws rejects its task only; one that kills the thread
 * (process.exit in a worker ends the thread) makes piscina start another.
 */
import { workerData } from 'node:worker_threads';
import { callContext, createLogger } from '../log/logger.js';
import { loadService } from '../service/definition.js';
import type { ProcedureTask, ProcedureWorkerData } from './procedure-task.js';

const start = workerData as ProcedureWorkerData;
const service = await loadService(start.service);
await service.init?.({ options: start.serviceOptions, instanceId: start.instanceId });
const log = createLogger(start.logLevel, { role: 'server', thread: 'procedure', service: service.name });

export default function runProcedure(task: ProcedureTask): unknown {
  const procedure = service.procedures[task.procedure];
  if (procedure === undefined) throw new Error(`procedure ${task.procedure} is not in service ${service.name}`);
  return procedure.handler(task.argument, callContext(log, task.transport, task.callId, task.peer));
}
