import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** What /readyz answers: 200 when ready, 503 otherwise, with the state as the body. */
export interface ReadyState {
  ready: boolean;
  role: string;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  log: Logger;
  /** Whether the process is ready (streaming as leader, or a healthy standby), and why. */
  ready: () => ReadyState;
  /** The report /status serves (what `status --json` prints), computed on request. */
  status?: () => Promise<unknown>;
  routes?: Array<{ prefix: string; handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> }>;
}

/**
 * /healthz (alive), /readyz (ready), /metrics (Prometheus), /status (the operator's report) and extra routes
 * such as the webhook receiver. /status answers 200 whatever the health it reports: it is a report, and a probe
 * that should fail belongs on /readyz (this instance) or `status --check` (the whole connector).
 */
export async function startOpsServer(opts: OpsServerOptions): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = opts.routes?.find((r) => path.startsWith(r.prefix));
    const handled = route
      ? route.handle(req, res)
      : (async () => {
          if (path === '/healthz') return send(res, 200, 'application/json', '{"status":"ok"}');
          if (path === '/readyz') {
            const state = opts.ready();
            return send(res, state.ready ? 200 : 503, 'application/json', JSON.stringify(state));
          }
          if (path === '/metrics') return send(res, 200, opts.metrics.registry.contentType, await opts.metrics.registry.metrics());
          if (path === '/status' && opts.status) return send(res, 200, 'application/json', `${JSON.stringify(await opts.status(), null, 2)}\n`);
          send(res, 404, 'application/json', '{"error":"not found"}');
        })();
    handled.catch((e: unknown) => {
      opts.log.error({ err: e, path: path.startsWith('/webhooks/') ? '/webhooks/…' : path }, 'ops server request failed');
      if (!res.headersSent) send(res, 500, 'application/json', '{"error":"internal"}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  opts.log.info({ host: opts.host, port }, 'ops server listening');
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'Content-Type': type });
  res.end(body);
}
