import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real single-node Slurm cluster on this machine for the tests (Debian's slurm-wlm and munge):
 * munged, slurmctld and slurmd on 127.0.0.1 with their own key, ports, state, spool and logs under a
 * temp directory, and `SLURM_CONF` naming its slurm.conf. Needs root (slurmd runs jobs as their
 * user). Stopping kills the daemons and removes everything.
 */
export interface SlurmCluster {
  root: string;
  /** SLURM_CONF for clients (sbatch, squeue, scontrol, scancel). */
  env: NodeJS.ProcessEnv;
  logs: string[];
  stop(): Promise<void>;
}

/** Why a cluster cannot start here, or null when it can. */
export function slurmUnavailable(): string | null {
  for (const bin of ['munged', 'slurmctld', 'slurmd', 'sbatch']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (apt-get install slurm-wlm munge)`;
  }
  if (process.getuid?.() !== 0) return 'a test cluster needs root (slurmd starts jobs as their user)';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startSlurm(): Promise<SlurmCluster> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-slurm-'));
  const dir = (name: string) => path.join(root, name);
  for (const d of ['munge', 'state', 'spool', 'log', 'run']) await fsp.mkdir(dir(d), { mode: 0o700 });
  await fsp.writeFile(path.join(dir('munge'), 'munge.key'), randomBytes(1024), { mode: 0o400 });
  const socket = path.join(dir('munge'), 'munge.sock');
  const host = os.hostname().split('.')[0]!;
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const cpus = Math.max(2, os.cpus().length);
  const conf = path.join(root, 'slurm.conf');
  await fsp.writeFile(
    conf,
    [
      'ClusterName=gitmltest',
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      `StateSaveLocation=${dir('state')}`,
      `SlurmdSpoolDir=${dir('spool')}`,
      `SlurmctldPidFile=${path.join(dir('run'), 'slurmctld.pid')}`,
      `SlurmdPidFile=${path.join(dir('run'), 'slurmd.pid')}`,
      `SlurmctldLogFile=${path.join(dir('log'), 'slurmctld.log')}`,
      `SlurmdLogFile=${path.join(dir('log'), 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerType=sched/backfill',
      'MpiDefault=none',
      'ReturnToService=2',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      // Finished jobs stay visible to scontrol for an hour (no accounting database here).
      'MinJobAge=3600',
      'KillWait=10',
      'InactiveLimit=0',
      `NodeName=gitmlnode NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=2000 State=UNKNOWN`,
      'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const daemons: ChildProcess[] = [];
  const start = (cmd: string, args: string[], log: string) => {
    const out = fs.openSync(path.join(dir('log'), log), 'a');
    const child = spawn(cmd, args, { env, stdio: ['ignore', out, out], detached: true });
    fs.closeSync(out);
    child.unref();
    daemons.push(child);
  };
  const cluster: SlurmCluster = {
    root,
    env: { SLURM_CONF: conf },
    logs: [path.join(dir('log'), 'slurmctld.log'), path.join(dir('log'), 'slurmd.log')],
    stop: async () => {
      for (const d of daemons.reverse()) {
        try {
          if (d.pid) process.kill(-d.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      // Jobs slurmd started run in their own sessions: end whatever still runs from this cluster.
      spawnSync('pkill', ['-KILL', '-f', root]);
      await fsp.rm(root, { recursive: true, force: true }).catch(() => undefined);
    },
  };
  try {
    start('munged', ['-F', `--socket=${socket}`, `--key-file=${path.join(dir('munge'), 'munge.key')}`, `--log-file=${path.join(dir('munge'), 'munged.log')}`, `--pid-file=${path.join(dir('munge'), 'munged.pid')}`, `--seed-file=${path.join(dir('munge'), 'seed')}`, '-f'], 'munged.out');
    await until(() => fs.existsSync(socket), 'munged did not create its socket', root);
    start('slurmctld', ['-D', '-i', '-f', conf], 'slurmctld.out');
    start('slurmd', ['-D', '-N', 'gitmlnode', '-f', conf], 'slurmd.out');
    // Ready when the node is idle: sinfo answers, and the node has registered.
    await until(() => /idle/.test(spawnSync('sinfo', ['-h', '-o', '%T'], { env }).stdout?.toString() ?? ''), 'the Slurm node did not become idle', root);
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

/** Polls without a deadline of its own: the test's budget ends a cluster that never comes up. */
async function until(ok: () => boolean, what: string, root: string): Promise<void> {
  for (let i = 0; ; i++) {
    if (ok()) return;
    // Give up only when a daemon has clearly failed (its log says fatal).
    for (const f of ['slurmctld.log', 'slurmd.log', 'slurmctld.out', 'slurmd.out']) {
      const text = fs.existsSync(path.join(root, 'log', f)) ? fs.readFileSync(path.join(root, 'log', f), 'utf8') : '';
      if (/fatal:/i.test(text)) throw new Error(`${what}: ${text.split('\n').filter((l) => /fatal/i.test(l)).join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(50 * (i + 1), 500)));
  }
}
