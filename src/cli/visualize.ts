// `xway visualize`: serves the ring visualizer (web/) from the package, with the bindings it runs
// (dist/ring/, dist/errors.js, loaded by the page's workers as plain ES modules) and the chart
// library, plus a Server-Sent Events stream of this host's xway connections for live mode.
//
// The page needs SharedArrayBuffer, so every response carries the cross-origin isolation headers
// (COOP same-origin, COEP require-corp). Only files under a few fixed roots are served, with a
// fixed list of extensions; a path that resolves outside its root is refused. By default the
// server listens on 127.0.0.1 and answers only requests whose Host header names a loopback
// address (so a page elsewhere cannot read the live stream through DNS rebinding).

import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, UsageError } from './args.js';
import type { HostSnapshot } from '../stat/types.js';

export type SnapshotFn = () => HostSnapshot | Promise<HostSnapshot>;

export interface VisualizerOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Address to listen on; 127.0.0.1 by default. */
  host?: string;
  /** What live mode streams. Defaults to the real reader, snapshotHost() from src/stat/snapshot.ts,
   *  loaded when the first live client connects. */
  snapshot?: SnapshotFn;
  /** Milliseconds between two live snapshots (250). */
  intervalMs?: number;
}

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** Response headers for everything this server sends. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': [
    "default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "worker-src 'self'",
    "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
  ].join('; '),
};

interface Mount {
  /** URL prefix, ending in '/', or an exact URL path for a single file. */
  prefix: string;
  /** Directory (for a prefix) or file. */
  target: string;
  /** File names ending in one of these may be served. */
  extensions: string[];
}

function mounts(): Mount[] {
  const require = createRequire(import.meta.url);
  let uplotDir: string | null = null;
  try {
    uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.esm.js'));
  } catch { /* served as 404: the page says the charts are missing */ }
  const list: Mount[] = [
    { prefix: '/dist/ring/', target: path.join(PACKAGE_ROOT, 'dist', 'ring'), extensions: ['.js', '.js.map'] },
    { prefix: '/dist/errors.js', target: path.join(PACKAGE_ROOT, 'dist', 'errors.js'), extensions: ['.js'] },
    { prefix: '/', target: path.join(PACKAGE_ROOT, 'web'), extensions: ['.html', '.js', '.css', '.png', '.svg'] },
  ];
  if (uplotDir) {
    list.unshift(
      { prefix: '/vendor/uplot/uPlot.esm.js', target: path.join(uplotDir, 'uPlot.esm.js'), extensions: ['.js'] },
      { prefix: '/vendor/uplot/uPlot.min.css', target: path.join(uplotDir, 'uPlot.min.css'), extensions: ['.css'] },
    );
  }
  return list;
}

/** The file a URL path names, or null when it names nothing this server may serve. */
export function resolveStatic(urlPath: string, table: Mount[] = mounts()): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  if (decoded.split('/').some((part) => part === '..' || part === '.')) return null;
  if (decoded === '/') decoded = '/index.html';
  for (const { prefix, target, extensions } of table) {
    let file: string;
    if (prefix.endsWith('/')) {
      if (!decoded.startsWith(prefix)) continue;
      file = path.resolve(target, '.' + decoded.slice(prefix.length - 1));
      if (!file.startsWith(target + path.sep)) return null;
    } else {
      if (decoded !== prefix) continue;
      file = target;
    }
    const name = path.basename(file);
    if (name.startsWith('.') || !extensions.some((ext) => name.endsWith(ext))) return null;
    return file;
  }
  return null;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || host.startsWith('127.');
}

/** The Host header's name part (without the port), lower-cased. */
function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? null : h.slice(0, end + 1);
  }
  return h.split(':')[0] ?? null;
}

/** JSON with bigints as numbers while they are exact, as decimal strings beyond 2^53. */
export function snapshotJson(snapshot: HostSnapshot): string {
  return JSON.stringify(snapshot, (_key, value) =>
    typeof value === 'bigint' ? (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString()) : value);
}

async function defaultSnapshot(): Promise<SnapshotFn> {
  return (await import('../stat/snapshot.js')).snapshotHost;
}

/** Starts the visualizer's HTTP server; resolves once it listens. */
export async function startVisualizer(options: VisualizerOptions = {}): Promise<http.Server> {
  const { port = 0, host = '127.0.0.1', intervalMs = 250 } = options;
  const table = mounts();
  const checkHost = isLoopback(host);
  let snapshotFn: Promise<SnapshotFn> | null = options.snapshot ? Promise.resolve(options.snapshot) : null;
  const streams = new Set<() => void>();

  const server = http.createServer((req, res) => {
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (checkHost) {
      const name = hostName(req.headers.host);
      if (name === null || !isLoopback(name)) return send(403, 'Host not allowed\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'Method not allowed\n', { Allow: 'GET, HEAD' });
    const rawPath = (req.url ?? '/').split('?')[0]!;
    if (!rawPath.startsWith('/')) return send(400, 'Bad request\n');

    if (rawPath === '/live') {
      snapshotFn ??= defaultSnapshot();
      return live(req, res, snapshotFn, intervalMs, streams);
    }
    const file = resolveStatic(rawPath, table);
    if (!file) return send(404, 'Not found\n');
    stat(file)
      .then((info) => {
        if (!info.isFile()) return send(404, 'Not found\n');
        return readFile(file).then((body) => {
          const ext = file.endsWith('.js.map') ? '.map' : path.extname(file);
          res.writeHead(200, {
            ...ISOLATION_HEADERS,
            'Content-Type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
            'Content-Length': String(body.byteLength),
            'Cache-Control': 'no-cache',
          });
          res.end(req.method === 'HEAD' ? undefined : body);
        });
      })
      .catch(() => { if (!res.headersSent) send(404, 'Not found\n'); else res.destroy(); });
  });
  server.on('close', () => { for (const stop of streams) stop(); });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return server;
}

/** Live mode: one `data:` event per snapshot (a HostSnapshot as JSON), every intervalMs; an
 *  `event: problem` with a message when the reader is missing or fails. */
function live(req: http.IncomingMessage, res: http.ServerResponse, snapshotFn: Promise<SnapshotFn>,
  intervalMs: number, streams: Set<() => void>): void {
  res.writeHead(200, {
    ...ISOLATION_HEADERS,
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
  });
  res.write('retry: 2000\n\n');
  if (req.method === 'HEAD') { res.end(); return; }
  let busy = false;
  let closed = false;
  const tick = async () => {
    if (busy || closed) return;
    busy = true;
    try {
      const snapshot = await (await snapshotFn)();
      if (!closed) res.write(`data: ${snapshotJson(snapshot)}\n\n`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!closed) res.write(`event: problem\ndata: ${JSON.stringify({ message })}\n\n`);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(tick, intervalMs);
  const stop = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    streams.delete(stop);
    res.end();
  };
  streams.add(stop);
  req.on('close', stop);
  void tick();
}

const USAGE = `Usage: xway visualize [--port N] [--host ADDRESS]

Serves the ring visualizer: a simulation of a ring running in your browser, and a live view of
this host's xway connections.

  --port N          TCP port (default 0: any free port)
  --host ADDRESS    address to listen on (default 127.0.0.1; anything else exposes the live view
                    of this host's connections to whoever can reach it)
  -h, --help        this text
`;

/** The `xway visualize` command: serves until SIGINT or SIGTERM. */
export async function visualizeCommand(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  let port = 0;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`flag '--port' must be an integer from 0 to 65535, got '${values.port}'`);
  }
  const host = values.host ?? '127.0.0.1';
  if (host === '') throw new UsageError("flag '--host' must not be empty");
  const server = await startVisualizer({ port, host });
  const address = server.address();
  const shown = typeof address === 'object' && address ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`xway visualize: http://${urlHost}:${shown}/  (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
