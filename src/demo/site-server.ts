import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { demoPages, demoRobotsTxt, demoSvg } from './site-content.js';

export interface DemoSite {
  url: string;
  close(): Promise<void>;
}

/** Serves the demo website on `host` (an address the cluster's workers can reach) until closed. */
export async function startDemoSite(host: string, port = 0): Promise<DemoSite> {
  let origin = '';
  let pages = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(demoRobotsTxt);
    } else if (pages.has(path)) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(pages.get(path));
    } else if (path.endsWith('.svg')) {
      res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(demoSvg(path));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  origin = `http://${host}:${address.port}`;
  pages = new Map(demoPages(origin).map((p) => [p.path, p.html]));
  return {
    url: `${origin}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
