#!/usr/bin/env node
// A static file server for the demo: serves the repository root on 127.0.0.1 (a secure context,
// so WebGPU works), with `/` redirecting to the demo page.
//   node web/serve.mjs [port]        (default 8080; 0 picks a free port)
// Then open http://127.0.0.1:8080/ (optionally ?model=URL of a model directory).

import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import { extname, join, normalize, resolve, sep, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.safetensors': 'application/octet-stream',
};

/** Starts the server; resolves to `{ server, url, close() }`. */
export async function serve({ port = 8080, host = '127.0.0.1', root = ROOT, quiet = false } = {}) {
  const server = createServer(async (req, res) => {
    const log = (status) => {
      if (!quiet) console.log(`${status} ${req.method} ${req.url}`);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return log(405);
      }
      const url = new URL(req.url, 'http://localhost');
      if (url.pathname === '/' || url.pathname === '/index.html') {
        res.writeHead(302, { location: '/web/demo/' + url.search }).end();
        return log(302);
      }
      let rel;
      try {
        rel = decodeURIComponent(url.pathname);
      } catch {
        res.writeHead(400).end('bad path');
        return log(400);
      }
      let path = normalize(join(root, rel));
      if (path !== root && !path.startsWith(root + sep)) {
        res.writeHead(403).end('forbidden');
        return log(403);
      }
      let st = await fs.stat(path).catch(() => null);
      if (st && st.isDirectory()) {
        if (!url.pathname.endsWith('/')) {
          res.writeHead(301, { location: url.pathname + '/' + url.search }).end();
          return log(301);
        }
        path = join(path, 'index.html');
        st = await fs.stat(path).catch(() => null);
      }
      if (!st || !st.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${url.pathname}`);
        return log(404);
      }
      res.writeHead(200, {
        'content-type': TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-cache',
      });
      if (req.method === 'HEAD') {
        res.end();
      } else {
        createReadStream(path).pipe(res);
      }
      log(200);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500).end(String(e));
      else res.destroy();
      log(500);
    }
  });
  await new Promise((ok, err) => {
    server.once('error', err);
    server.listen(port, host, ok);
  });
  const url = `http://${host}:${server.address().port}`;
  const close = () => new Promise((ok) => {
    server.close(ok);
    server.closeAllConnections?.();
  });
  return { server, url, close };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  const { url } = await serve({ port, quiet: !!process.env.QUIET });
  console.log(`serving ${ROOT} at ${url}/  (demo: ${url}/web/demo/)`);
}
