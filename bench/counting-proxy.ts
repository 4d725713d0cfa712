import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * A forwarding proxy that counts requests by method (what a bucket would bill), on a worker thread
 * of its own: every byte it copies costs the same for gitml and for the SDK-alone baseline (which runs
 * on the bench's main thread and must not share an event loop with the proxy).
 */
export interface Counter {
  url: string;
  counts(): Promise<Map<string, number>>;
  reset(): Promise<void>;
  total(): Promise<number>;
  close(): Promise<void>;
}

type Request = { id: number; op: 'counts' | 'reset' | 'close' };
type Reply = { id: number; counts: [string, number][] } | { ready: number };

export async function countingProxy(target: string): Promise<Counter> {
  const worker = new Worker(__filename, { workerData: { target } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: Reply) => ('ready' in m ? resolve(m.ready) : reject(new Error('proxy did not start'))));
  });
  let next = 0;
  const waiting = new Map<number, (r: Reply) => void>();
  worker.on('message', (m: Reply) => {
    if ('id' in m) {
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    }
  });
  const ask = (op: Request['op']) =>
    new Promise<Reply>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      worker.postMessage({ id, op } satisfies Request);
    });
  const counts = async () => {
    const reply = await ask('counts');
    return new Map('counts' in reply ? reply.counts : []);
  };
  const proxied = new URL(target);
  proxied.port = String(port);
  return {
    url: proxied.toString().replace(/\/$/, ''),
    counts,
    reset: async () => void (await ask('reset')),
    total: async () => [...(await counts()).values()].reduce((a, b) => a + b, 0),
    close: async () => {
      await ask('close');
      await worker.terminate();
    },
  };
}

function serve(target: string): void {
  const upstream = new URL(target);
  const counts = new Map<string, number>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    counts.set(req.method ?? '?', (counts.get(req.method ?? '?') ?? 0) + 1);
    const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host }, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ ready: (server.address() as AddressInfo).port } satisfies Reply));
  parentPort!.on('message', (m: Request) => {
    if (m.op === 'reset') counts.clear();
    if (m.op === 'close') {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    }
    parentPort!.postMessage({ id: m.id, counts: [...counts] } satisfies Reply);
  });
}

if (!isMainThread && (workerData as { target?: string } | null)?.target) serve((workerData as { target: string }).target);
