import { spawn, type ChildProcess } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Real store servers on loopback for the tests: s3rver (S3, in-process) and azurite (Azure Blob, its
 * CLI). Both bind to 127.0.0.1 on a free port and keep their data in a temp directory or in memory.
 */
export interface RunningServer {
  endpoint: string;
  stop(): Promise<void>;
}

export interface S3rverHandle extends RunningServer {
  port: number;
  directory: string;
  /** Dies at once, in-flight requests included (sockets destroyed), keeping its data for a restart. */
  crash(): Promise<void>;
}

export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export function azuriteConnectionString(endpoint: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`;
}

/** s3rver in this process; `port`/`directory` restart one on the data a crashed one left. */
export async function startS3rver(options: { port?: number; directory?: string } = {}): Promise<S3rverHandle> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const S3rver = require('s3rver');
  const directory = options.directory ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-s3rver-')));
  const server = new S3rver({ address: '127.0.0.1', port: options.port ?? 0, silent: true, directory });
  const address = (await server.run()) as { address: string; port: number };
  const http = server.httpServer as import('node:http').Server;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    directory,
    stop: async () => {
      http.closeAllConnections();
      await server.close();
      await fsp.rm(directory, { recursive: true, force: true });
    },
    crash: async () => {
      const closed = new Promise((r) => http.close(r));
      http.closeAllConnections();
      await closed;
    },
  };
}

export async function startAzurite(): Promise<RunningServer> {
  // azurite's blob CLI, run by this node (from the source tree under jest and from dist/ alike).
  const main = require.resolve('azurite/dist/src/blob/main.js');
  const workdir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-azurite-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--silent', '--disableTelemetry', '--skipApiVersionCheck'],
    { cwd: workdir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`azurite did not start in 30 s:\n${out}`)), 30_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /successfully listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]}/devstoreaccount1`);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`azurite exited (${code}) before listening:\n${out}`)));
    child.once('error', reject);
  });
  return {
    endpoint,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await fsp.rm(workdir, { recursive: true, force: true });
    },
  };
}
