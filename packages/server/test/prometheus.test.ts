import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import demo from '../src/service/demo-service.js';
import { ServiceClient } from '../src/index.js';
import { freePort, startServer, type RunningServer } from './helpers.js';

const PROMETHEUS = '/usr/bin/prometheus';
const TCP_CALLS = 120;
const UDP_CALLS = 80;

async function query(prometheusPort: number, expression: string): Promise<number | undefined> {
  const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/query?query=${encodeURIComponent(expression)}`).catch(() => undefined);
  if (response === undefined || !response.ok) return undefined;
  const body = (await response.json()) as { data: { result: { value: [number, string] }[] } };
  const first = body.data.result[0];
  return first === undefined ? undefined : Number(first.value[1]);
}

async function until(prometheusPort: number, expression: string, expected: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  let value: number | undefined;
  while (Date.now() < deadline) {
    value = await query(prometheusPort, expression);
    if (value === expected) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return value;
}

/** Prometheus's web port is picked free, but may be taken before it binds: it then exits, and starts again on another. */
const PROMETHEUS_START_ATTEMPTS_MAX = 3;
const PROMETHEUS_READY_TIMEOUT_MS = 60_000;

async function startPrometheus(directory: string): Promise<{ prometheus: ChildProcess; prometheusPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const prometheusPort = await freePort();
    const prometheus = spawn(
      PROMETHEUS,
      [`--config.file=${path.join(directory, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(directory, 'data')}`, `--web.listen-address=127.0.0.1:${prometheusPort}`],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + PROMETHEUS_READY_TIMEOUT_MS;
    while (prometheus.exitCode === null && Date.now() < deadline) {
      const ready = await fetch(`http://127.0.0.1:${prometheusPort}/-/ready`).then((response) => response.ok, () => false);
      if (ready) return { prometheus, prometheusPort };
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
    if (attempt === PROMETHEUS_START_ATTEMPTS_MAX) throw new Error(`prometheus did not become ready on 127.0.0.1:${prometheusPort} (exit code ${prometheus.exitCode})`);
  }
}

describe('a real Prometheus scrapes the server (Debian prometheus, installed by scripts/setup)', () => {
  let server: RunningServer;
  let prometheus: ChildProcess;
  let prometheusPort: number;
  let directory: string;

  beforeAll(async () => {
    server = await startServer(['--processes', '2', '--threads', '1']);
    directory = mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-prometheus-'));
    const target = new URL(server.metricsUrl).host;
    writeFileSync(
      path.join(directory, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: rocerpc\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['${target}']\n`,
    );
    ({ prometheus, prometheusPort } = await startPrometheus(directory));
  });
  afterAll(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await server?.stop();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  });

  it('sees the target up and the calls counter equal to the calls driven', async () => {
    expect(await until(prometheusPort, 'up{job="rocerpc"}', 1, 60_000)).toBe(1);
    const tcp = await ServiceClient.connect(demo, { transport: 'tcp', port: server.tcpPort });
    const udp = await ServiceClient.connect(demo, { transport: 'udp', port: server.udpPort });
    try {
      const payload = new Uint8Array(100);
      await Promise.all(Array.from({ length: TCP_CALLS }, () => tcp.call('echo', payload)));
      await Promise.all(Array.from({ length: UDP_CALLS }, () => udp.call('echo', payload)));
    } finally {
      await tcp.close();
      await udp.close();
    }
    expect(await until(prometheusPort, 'sum(rocerpc_calls_total{job="rocerpc",procedure="echo",status="success"})', TCP_CALLS + UDP_CALLS, 30_000)).toBe(TCP_CALLS + UDP_CALLS);
    expect(await query(prometheusPort, 'sum(rocerpc_calls_total{transport="udp",procedure="echo"})')).toBe(UDP_CALLS);
    expect(await query(prometheusPort, 'sum(rocerpc_call_duration_seconds_count{procedure="echo"})')).toBe(TCP_CALLS + UDP_CALLS);
    expect(await query(prometheusPort, 'rocerpc_server_processes')).toBe(2);
  });
});
