import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy on 127.0.0.1 in front of a store emulator that misbehaves on a seeded schedule:
 * 503 SlowDown, 500, connection resets (before any answer, or half-way through an upload), truncated
 * response bodies, stalls (an answer 1.5 s late), hangs (the connection is accepted and never
 * answered) and bodies that stop half-way and never end. Counts what it did.
 */
export type Fault = 'slowdown' | 'error500' | 'reset' | 'truncate' | 'stall' | 'hang' | 'stuckBody' | 'none';

export interface FaultProxy {
  url: string;
  counts: Record<Fault, number>;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string, random: () => number, rate: number): Promise<FaultProxy> {
  const target = new URL(upstream);
  const counts: Record<Fault, number> = { slowdown: 0, error500: 0, reset: 0, truncate: 0, stall: 0, hang: 0, stuckBody: 0, none: 0 };
  const pick = (): Fault => {
    if (random() >= rate) return 'none';
    const r = random();
    return r < 0.22 ? 'slowdown' : r < 0.35 ? 'error500' : r < 0.55 ? 'reset' : r < 0.7 ? 'truncate' : r < 0.8 ? 'stall' : r < 0.9 ? 'hang' : 'stuckBody';
  };
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const fault = pick();
    counts[fault]++;
    if (fault === 'slowdown' || fault === 'error500') {
      req.resume();
      const code = fault === 'slowdown' ? 503 : 500;
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault === 'slowdown' ? 'SlowDown' : 'InternalError'}</Code><Message>injected</Message></Error>`;
      res.writeHead(code, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
      return;
    }
    if (fault === 'reset') {
      // Half-way through the request body (an upload cut off), or at once.
      let seen = 0;
      req.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen > 32 * 1024) req.socket.destroy();
      });
      setTimeout(() => req.socket.destroy(), seen > 0 ? 50 : 5);
      return;
    }
    if (fault === 'hang') {
      // Accepted, read, never answered: only the client's own deadline ends this request.
      req.resume();
      return;
    }
    const forward = () => {
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (fault === 'stuckBody' && Number(upRes.headers['content-length'] ?? 0) > 64) {
            // Half the body, then silence on an open connection (no end, no reset).
            const limit = Math.floor(Number(upRes.headers['content-length']) / 2);
            let sent = 0;
            upRes.on('data', (c: Buffer) => {
              if (sent >= limit) return;
              res.write(c.subarray(0, Math.max(0, limit - sent)));
              sent += c.length;
            });
            return;
          }
          if (fault === 'truncate' && Number(upRes.headers['content-length'] ?? 0) > 64) {
            let sent = 0;
            const limit = Math.floor(Number(upRes.headers['content-length']) / 2);
            upRes.on('data', (c: Buffer) => {
              if (sent + c.length >= limit) {
                res.write(c.subarray(0, limit - sent));
                res.socket?.destroy();
                upRes.destroy();
                return;
              }
              sent += c.length;
              res.write(c);
            });
            upRes.on('end', () => res.end());
            return;
          }
          upRes.pipe(res);
        },
      );
      up.on('error', () => res.socket?.destroy());
      req.pipe(up);
    };
    if (fault === 'stall') setTimeout(forward, 1500);
    else forward();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
