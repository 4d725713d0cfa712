import { GitmlError } from '../errors';
import type { SettingsView } from '../setting';
import { credentialsIn, redactUrl } from '../url-secrets';

/**
 * Where the user's cloud credentials may go (docs/security.md, "Settings a repository may set").
 *
 * An endpoint is the host that receives the credentials of the standard chains (AWS keys and session
 * tokens, an Azure SAS, SharedKey signatures). The person's own settings (environment, their git
 * config) may name any https endpoint. An endpoint written in the repository's .gitmlconfig is used
 * only when it is the cloud's own domain for that kind of store, or when the person approved it in
 * their own configuration (`gitml allow-endpoint <url>`, i.e. gitml.allowedEndpoint). Plain http is
 * refused everywhere except to loopback. Refusals happen before any request: nothing is sent.
 */
export type { SettingsView };

export type EndpointKind = 's3' | 'azure';

/** The setting that approves endpoints; multi-valued; read from the person's own config only. */
export const APPROVAL_KEY = 'gitml.allowedEndpoint';

const AWS_DOMAIN = /(^|\.)amazonaws\.com(\.cn)?$/;
const AZURE_DOMAIN = /^[a-z0-9]{3,24}\.(blob|dfs)\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net|cloudapi\.de)$/;

/** Whether `host` is this machine (loopback): the only place plain http may carry credentials. Pure. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Whether `host` is the cloud's own service domain for that kind of store. Pure. */
export function isCloudDomain(kind: EndpointKind, host: string): boolean {
  const h = host.toLowerCase();
  return kind === 's3' ? AWS_DOMAIN.test(h) : AZURE_DOMAIN.test(h);
}

/** scheme://host[:port], the unit an approval names. Pure; null for what is not an http(s) URL. */
export function endpointOrigin(url: string): string | null {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return `${u.protocol}//${u.host}`.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * The endpoint to use for `key` (gitml.s3.endpoint, gitml.azure.endpoint), or undefined for the SDK's
 * default (the cloud's own domain). Throws E_UNTRUSTED_SETTING or E_CONFIG, naming the setting, the
 * file it came from and what to run, before anything is sent.
 */
export function checkedEndpoint(kind: EndpointKind, key: string, settings: SettingsView): string | undefined {
  const s = settings.get(key);
  if (!s) return undefined;
  const shown = redactUrl(s.value);
  const secret = credentialsIn(s.value);
  if (secret) {
    throw new GitmlError('E_CONFIG', `${key}=${shown} (from ${s.source}) is refused: ${secret}`, {
      hint: 'Remove the credential from the URL; gitml takes credentials only from the standard chains (environment, profiles, identities).',
    });
  }
  let u: URL;
  try {
    u = new URL(s.value);
  } catch {
    throw new GitmlError('E_CONFIG', `${key}=${JSON.stringify(shown)} (from ${s.source}) is not a URL`, { hint: `Write it as https://host[:port], or remove it.` });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new GitmlError('E_CONFIG', `${key}=${shown} (from ${s.source}) must be an https URL`, { hint: 'Write it as https://host[:port].' });
  }
  if (u.protocol === 'http:' && !isLoopback(u.hostname)) {
    throw new GitmlError('E_UNTRUSTED_SETTING', `${key}=${shown} (from ${s.source}) is plain http: gitml never sends credentials unencrypted except to this machine; nothing was sent`, {
      hint: `Use https for ${u.host} (put the service behind TLS), or reach it through a tunnel on 127.0.0.1.`,
    });
  }
  if (s.origin === 'user') return s.value;
  if (u.protocol === 'https:' && isCloudDomain(kind, u.hostname)) return s.value;
  const origin = endpointOrigin(s.value)!;
  const approved = settings.getAllFromUser(APPROVAL_KEY).some((a) => endpointOrigin(a.value.trim()) === origin);
  if (approved) return s.value;
  const who = kind === 's3' ? 'your AWS credentials (access key id, session token, signatures)' : 'your Azure credentials (SAS token, SharedKey signatures)';
  throw new GitmlError(
    'E_UNTRUSTED_SETTING',
    `${key}=${shown} comes from ${s.source}, written by whoever can push to this repository; it would receive ${who}, so gitml did not contact it`,
    {
      hint: `If you trust ${origin}, approve it once: gitml allow-endpoint ${origin}   (or: git config --global --add ${APPROVAL_KEY} ${origin})`,
    },
  );
}
