/**
 * Process-wide settings, applied by the entry points only (bin/, filters/, remote-helper/), before
 * anything else runs. Library code never touches process state.
 */
export function setupProcess(env: NodeJS.ProcessEnv): void {
  // The AWS SDK warns on every start under Node 20 (support ends in 2027). In a filter that git starts
  // for every checkout the warning is noise on the user's terminal; gitml's own docs state the Node
  // versions it supports. An explicit setting by the user is respected.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
