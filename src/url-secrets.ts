/**
 * Credentials do not belong in URLs: a URL is printed in errors, shown by `gitml env`, stored in
 * records and passed on command lines where other users of the machine see it (docs/security.md).
 * gitml refuses URLs that carry one where it takes a URL (store URLs, a run's repository), and
 * redacts any that still reach a message (a git remote configured with a token, an SDK error).
 */

/** Query parameters that carry a credential (SAS, presigned S3, OAuth tokens). Lower-case. */
const SECRET_PARAMS = new Set([
  'sig',
  'signature',
  'token',
  'access_token',
  'private_token',
  'password',
  'secret',
  'key',
  'api_key',
  'apikey',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
  'code',
]);

/**
 * Why a URL holds a credential, or null. Userinfo with a password, or any userinfo in an http(s)
 * URL (a token is commonly written as the user name), and a query string that names a credential
 * (or, for an http(s) URL, any query: a store or repository URL needs none). ssh-style
 * `git@host:path` is not a credential. Pure.
 */
export function credentialsIn(url: string): string | null {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)/i.exec(url);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    if (userinfo.includes(':')) return 'it contains a user name and password';
    if (scheme === 'http' || scheme === 'https') return 'it contains a user name, which is where tokens are often written';
  }
  const q = url.indexOf('?');
  if (q >= 0) {
    const params = url.slice(q + 1).split('#')[0]!.split('&').map((p) => decodeSafe(p.split('=')[0] ?? '').toLowerCase());
    if (params.some((p) => SECRET_PARAMS.has(p) || p.startsWith('x-amz-'))) return 'its query string holds a credential (a token, a signature or a SAS)';
    if (scheme !== 'http' && scheme !== 'https' && scheme !== 'file') return 'it has a query string';
  }
  return null;
}

/** The URL with userinfo and query values replaced by "[redacted]". Pure. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@/i, (_w, scheme: string) => `${scheme}[redacted]@`)
    .replace(/\?([^#]*)/, (_w, query: string) => `?${query.split('&').map((p) => (p.includes('=') ? `${p.split('=')[0]}=[redacted]` : p)).join('&')}`);
}

/** Every URL inside a message redacted (a safety net for text gitml did not build itself). Pure. */
export function redactText(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>`]+/gi, (url) => (credentialsIn(url) || /[?@]/.test(url) ? redactUrl(url) : url));
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The URL without userinfo or query string: the form to record (run records, lineage). Pure. */
export function stripCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1').replace(/\?[^#]*/, '');
}
