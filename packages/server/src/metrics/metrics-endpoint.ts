/**
 * The HTTP `/metrics` endpoint, served by the supervisor: every serving
 * process's registry (metrics/metrics-exchange.ts), summed by prom-client's
 * AggregatorRegistry.aggregate (counters and histograms summed, gauges summed
 * unless their aggregator says otherwise), then the supervisor's own metrics.
 *
 * Life: created by the Supervisor before it forks, closed when it stops.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from 'node:cluster';
import { Counter, Gauge, Registry } from 'prom-client';
import { collectMetrics } from './metrics-exchange.js';

export class MetricsEndpoint {
  readonly registry = new Registry();
  readonly restarts = new Counter({ name: 'rocerpc_process_restarts_total', help: 'Server processes restarted after dying', registers: [this.registry] });
  readonly processes = new Gauge({ name: 'rocerpc_server_processes', help: 'Server processes running', registers: [this.registry] });
  private readonly server: Server;

  /** `serving` lists the processes to ask, at each scrape. */
  constructor(private readonly serving: () => Worker[]) {
    this.server = createServer((request, response) => {
      if (request.url !== '/metrics') {
        response.writeHead(404).end('see /metrics\n');
        return;
      }
      void this.render().then(
        (text) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(`${error.message}\n`),
      );
    });
  }

  private async render(): Promise<string> {
    const [processes, own] = await Promise.all([collectMetrics(this.serving()), this.registry.metrics()]);
    return `${processes}\n${own}`;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
