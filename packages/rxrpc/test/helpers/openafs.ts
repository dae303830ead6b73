/**
 * Starts a real OpenAFS database server (vlserver or ptserver) with
 * -noauth on a throw-away configuration and database directory.
 *
 * Ubik insists that one of the host's own non-loopback addresses is in the
 * CellServDB; the helper lists the first one and reports none when the
 * machine has no such address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const OPENAFS_LIBEXEC = '/usr/lib/openafs';

export function primaryIpv4(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return undefined;
}

export interface OpenAfsServer {
  process: ChildProcess;
  directory: string;
  stop(): Promise<void>;
}

export function startOpenAfsServer(program: 'vlserver' | 'ptserver', hostAddress: string): OpenAfsServer {
  const directory = mkdtempSync(path.join(os.tmpdir(), `roce-rpc-${program}-`));
  mkdirSync(path.join(directory, 'conf'));
  mkdirSync(path.join(directory, 'db'));
  writeFileSync(path.join(directory, 'conf', 'ThisCell'), 'roce-rpc.test\n');
  writeFileSync(path.join(directory, 'conf', 'CellServDB'), `>roce-rpc.test #test cell\n${hostAddress} #this host\n`);
  const binary = path.join(OPENAFS_LIBEXEC, program);
  const child = spawn(
    binary,
    ['-noauth', '-config', path.join(directory, 'conf'), '-database', path.join(directory, 'db', program), '-logfile', path.join(directory, 'log')],
    { stdio: 'ignore' },
  );
  return {
    process: child,
    directory,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

export function openAfsInstalled(program: string): boolean {
  return existsSync(path.join(OPENAFS_LIBEXEC, program));
}
