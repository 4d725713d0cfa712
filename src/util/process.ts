import { spawn } from 'node:child_process';

/** A finished program's exit code and output; a program that cannot start is exit 127 with the reason. */
export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end with its output collected (small outputs: gh, sbatch, scontrol). */
export function runProgram(cmd: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<ProgramResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', (e) => resolve({ code: 127, stdout, stderr: e.message }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
