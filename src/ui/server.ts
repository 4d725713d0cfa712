import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import YAML from 'yaml';
import { isGitmlError } from '../errors';
import { parseAssetType, type AssetType } from '../assets/names';
import type { UiModel } from './model';
import { assetsPage, diffPage, messagePage, page, runPage, runsPage, STYLE, versionPage } from './pages';

/**
 * `gitml ui`'s server: loopback only, read-only (GET and HEAD; anything else is 405), and only for
 * requests that name it by a loopback host (a web page elsewhere cannot reach it through DNS
 * rebinding). Every page is rendered on the server; the Content-Security-Policy forbids scripts
 * altogether, so even a rendering mistake could not run a hostile repository's text as code.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface UiServer {
  url: string;
  close(): Promise<void>;
}

export async function startUi(model: UiModel, port: number, host = '127.0.0.1'): Promise<UiServer> {
  const app: FastifyInstance = Fastify({ logger: false });
  let origin = '';
  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) void reply.header(k, v);
    const hostHeader = String(req.headers.host ?? '');
    const allowed = [origin.replace(/^http:\/\//, ''), origin.replace(/^http:\/\/127\.0\.0\.1/, 'localhost').replace(/^http:\/\//, '')];
    if (!allowed.includes(hostHeader)) return reply.code(421).type('text/plain').send('gitml ui answers only requests to its loopback address\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply.code(405).header('allow', 'GET, HEAD').type('text/plain').send('gitml ui is read-only\n');
  });
  const send = (reply: FastifyReply, title: string, body: Parameters<typeof page>[2], code = 200) => reply.code(code).type('text/html; charset=utf-8').send(page(title, model.title, body));
  const fail = (reply: FastifyReply, e: unknown) => {
    const usage = isGitmlError(e, 'E_USAGE');
    return send(reply, usage ? 'Not found' : 'Error', messagePage(usage ? 'Not found' : 'Error', (e as Error).message), usage ? 404 : 500);
  };
  const typeOf = (text: string): AssetType => parseAssetType(text.replace(/s$/, ''));

  app.get('/style.css', async (_req, reply) => reply.type('text/css; charset=utf-8').send(STYLE));
  app.get('/', async (req, reply) => {
    const q = String((req.query as { q?: unknown }).q ?? '').slice(0, 200);
    try {
      return send(reply, 'Assets', assetsPage(await model.assets(q), q));
    } catch (e) {
      return fail(reply, e);
    }
  });
  app.get('/asset/:type/:name/:version', async (req, reply) => {
    const p = req.params as { type: string; name: string; version: string };
    try {
      const v = await model.version(typeOf(p.type), p.name, p.version);
      if (!v) return send(reply, 'Not found', messagePage('Not found', `${p.type}s/${p.name}@${p.version} is not registered here.`), 404);
      return send(reply, `${v.type} ${v.name}@${v.version}`, versionPage(v, model.prefix));
    } catch (e) {
      return fail(reply, e);
    }
  });
  app.get('/diff/:type/:name/:a/:b', async (req, reply) => {
    const p = req.params as { type: string; name: string; a: string; b: string };
    try {
      const type = typeOf(p.type);
      const d = await model.diff(type, p.name, p.a, p.b);
      if (!d) return send(reply, 'Not found', messagePage('Not found', `one of the versions ${p.a} and ${p.b} of ${p.type}s/${p.name} is not registered here.`), 404);
      return send(reply, `${p.name} ${p.a} → ${p.b}`, diffPage(type, p.name, d.a, d.b, d.changes, d.same));
    } catch (e) {
      return fail(reply, e);
    }
  });
  app.get('/runs', async (_req, reply) => {
    try {
      return send(reply, 'Runs', runsPage(await model.runs()));
    } catch (e) {
      return fail(reply, e);
    }
  });
  app.get('/runs/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    try {
      const run = (await model.runs()).find((r) => r.id === id);
      if (!run) return send(reply, 'Not found', messagePage('Not found', `no run ${id} here`), 404);
      return send(reply, `Run ${id}`, runPage(id, run.text ? (YAML.parse(run.text) as Record<string, unknown>) : null, run.text));
    } catch (e) {
      return fail(reply, e);
    }
  });
  app.setNotFoundHandler((_req, reply) => send(reply, 'Not found', messagePage('Not found', 'No such page.'), 404));

  await app.listen({ port, host });
  const address = app.server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  origin = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
  return { url: `${origin}/`, close: () => app.close() };
}
