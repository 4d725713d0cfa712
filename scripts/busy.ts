import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * `npm run test:busy`: runs a command (default: jest) while the machine is kept busy, the way a
 * shared CI runner is: one CPU-bound thread per core, and a disk writer that writes and deletes
 * 256 MiB files in the temp directory without pause. The suite must pass like this (no test may
 * depend on the machine being idle). Exits with the command's status.
 */
const command = process.argv.slice(2);
const [cmd, ...args] = command.length > 0 ? command : ['npx', 'jest'];

const spinners = Array.from({ length: os.cpus().length }, () => new Worker('let x = 0; for (;;) { x = (x * 1103515245 + 12345) % 2147483648; }', { eval: true }));
let writing = true;
const file = path.join(os.tmpdir(), `gitml-busy-${process.pid}.bin`);
const block = Buffer.alloc(1 << 20, 7);
void (async () => {
  while (writing) {
    const handle = await fs.promises.open(file, 'w');
    for (let i = 0; i < 256 && writing; i++) await handle.write(block);
    await handle.sync();
    await handle.close();
    await fs.promises.rm(file, { force: true });
  }
})();

process.stderr.write(`busy: ${spinners.length} CPU-bound threads and a disk writer are running; ${cmd} ${args.join(' ')}\n`);
const child = spawn(cmd!, args, { stdio: 'inherit' });
child.on('close', (code, signal) => {
  writing = false;
  for (const w of spinners) void w.terminate();
  fs.rmSync(file, { force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
