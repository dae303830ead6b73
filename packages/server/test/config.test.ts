import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ServerError, fillServerOptions, helpText, kDefaultServerOptions, kOptionSpecs, resolveCommandLine } from '../src/index.js';
import { runCli } from './helpers.js';

function refusal(run: () => unknown): ServerError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ServerError);
    return error as ServerError;
  }
  throw new Error('expected a refusal');
}

describe('options are filled from defaults in one place and validated by field', () => {
  it('fills every option from the defaults when none is given', () => {
    expect(fillServerOptions({})).toEqual(kDefaultServerOptions);
    expect(kDefaultServerOptions.processes).toBe(os.availableParallelism());
  });

  it('refuses a bad value with a stable code naming the field', () => {
    const error = refusal(() => fillServerOptions({ threads: 0 }));
    expect(error.code).toBe('ERR_SERVER_CONFIG_INVALID');
    expect(error.field).toBe('threads');
    expect(error.message).toMatch(/threads must be within \[1, 256\], got 0/);
    expect(refusal(() => fillServerOptions({ transports: ['tcp', 'sctp' as 'tcp'] })).field).toBe('transports');
    expect(refusal(() => fillServerOptions({ logLevel: 'loud' as 'info' })).field).toBe('logLevel');
    expect(refusal(() => fillServerOptions({ processes: 2, udpPort: 0 })).field).toBe('udpPort');
    expect(refusal(() => fillServerOptions({ restartBackoffMs: 500, restartBackoffMaxMs: 100 })).field).toBe('restartBackoffMaxMs');
  });

  it('layers config file < environment < flags', () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-config-'));
    const file = path.join(directory, 'server.json');
    writeFileSync(file, JSON.stringify({ threads: 3, tcpPort: 1000, udpPort: 1001, serviceOptions: { dataDirectory: '/x' } }));
    const { options } = resolveCommandLine(['--config', file, '--tcp-port=3000'], { ROCE_RPC_TCP_PORT: '2000', ROCE_RPC_UDP_PORT: '2001', ROCE_RPC_TRANSPORTS: 'tcp,udp' });
    expect(options).toMatchObject({ threads: 3, tcpPort: 3000, udpPort: 2001, transports: ['tcp', 'udp'], serviceOptions: { dataDirectory: '/x' } });
  });

  it('refuses unknown options and unreadable or malformed config files', () => {
    expect(refusal(() => resolveCommandLine(['--tcp-prot', '1'], {})).code).toBe('ERR_SERVER_CONFIG_UNKNOWN_OPTION');
    const directory = mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-config-'));
    const typo = path.join(directory, 'typo.json');
    writeFileSync(typo, JSON.stringify({ thread: 2 }));
    expect(refusal(() => resolveCommandLine(['--config', typo], {}))).toMatchObject({ code: 'ERR_SERVER_CONFIG_UNKNOWN_OPTION', field: 'thread' });
    const broken = path.join(directory, 'broken.json');
    writeFileSync(broken, '{ "threads": 2');
    expect(refusal(() => resolveCommandLine(['--config', broken], {})).code).toBe('ERR_SERVER_CONFIG_FILE');
    expect(refusal(() => resolveCommandLine([], { ROCE_RPC_CONFIG: path.join(directory, 'missing.json') })).code).toBe('ERR_SERVER_CONFIG_FILE');
    expect(refusal(() => resolveCommandLine([], { ROCE_RPC_THREADS: 'many' }))).toMatchObject({ code: 'ERR_SERVER_CONFIG_INVALID', field: 'threads' });
  });

  it('--help lists every option with its environment variable', async () => {
    const run = runCli(['--help']);
    expect(await run.exit).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const text = helpText();
    for (const spec of kOptionSpecs) expect(text).toContain(spec.name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`));
    expect(text).toContain('ROCE_RPC_MAX_IN_FLIGHT_CALLS');
  });

  it('the CLI refuses a malformed configuration at start, naming the field, exit code 2', async () => {
    const run = runCli(['--processes', '0']);
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toMatch(/processes must be within \[1, 256\], got 0 \[ERR_SERVER_CONFIG_INVALID\]/);
    const environment = runCli([], { ROCE_RPC_LOG_LEVEL: 'chatty' });
    expect(await environment.exit).toBe(2);
    expect(environment.stderr()).toMatch(/logLevel must be one of/);
  });
});
