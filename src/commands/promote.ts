import { runProgram } from '../util/process';
import { promote } from '../assets/promote';
import { err, json, openHere, out, withJson, type CliIO, type Command } from './io';

function runGh(io: CliIO) {
  return (args: string[]) => runProgram('gh', args, { env: io.env, cwd: io.cwd });
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export const promoteCommand: Command = (io) => ({
  command: 'promote <ref>',
  describe: 'propose an asset version for a stage (staging, production) by pull request, or --merge it directly',
  builder: (y) =>
    withJson(y)
      .positional('ref', { type: 'string' })
      .option('to', { type: 'string', demandOption: true, describe: 'stage: staging, production, ... (branch from gitml.stage.<stage>.branch, default its name)' })
      .option('remote', { type: 'string', default: 'origin' })
      .option('merge', { type: 'boolean', default: false, describe: 'fast-forward the stage branch and push it, without a pull request' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'show the plan, change nothing' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    try {
      const plan = await promote(gitml, { ref: argv.ref as string, stage: argv.to as string, remote: argv.remote as string, merge: argv.merge as boolean, dryRun: argv['dry-run'] as boolean }, runGh(io));
      if (argv.json) return json(io, plan);
      if (argv['dry-run']) {
        out(io, `Would promote ${plan.asset} to ${plan.stage}: branch ${plan.branch} from ${plan.base ? `${argv.remote}/${plan.stageBranch} (${plan.base.slice(0, 12)})` : `a new ${plan.stageBranch}`}${argv.merge ? `, then fast-forward ${plan.stageBranch}` : ', then a pull request'}.`);
        out(io, plan.message.replace(/^/gm, '  '));
        return;
      }
      if (plan.merged) return out(io, `Promoted ${plan.asset} to ${plan.stage}: ${argv.remote}/${plan.stageBranch} is now ${plan.commit!.slice(0, 12)}.`);
      out(io, `Pushed ${plan.branch} (${plan.commit!.slice(0, 12)}).`);
      const pr = plan.pullRequest!;
      if (pr.created) out(io, `Pull request: ${pr.url}`);
      else {
        err(io, 'gitml: gh (GitHub CLI) is not installed; open the pull request with:');
        out(io, `  gh ${pr.command.map(quote).join(' ')}`);
        if (pr.compareUrl) out(io, `  or in a browser: ${pr.compareUrl}`);
      }
    } finally {
      await gitml.close();
    }
  },
});
