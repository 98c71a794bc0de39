import { parseConfig } from '../../../src/config/load.js';

/** The default depl.yaml shape (as `depl init` writes it), with offline base images. */
export const crawlerYaml = `
app: crawler
domain: crawler.localhost
images: { node: depl-base/node:20, nginx: depl-base/nginx:1, redis: depl-base/redis:7 }
services:
  api:
    build: { context: ., dockerfile: templates/crawler.Dockerfile, args: { EXTRA: "1" } }
    command: [node, dist/crawler/api/server.js]
    configArg: true
    port: 8000
    replicas: 2
    http: true
    health: /healthz
    env: { LOG_LEVEL: info }
  worker:
    from: api
    command: [node, dist/crawler/worker/main.js]
    configArg: true
    replicas: 3
    stopGracePeriod: 30s
accessories:
  redis:
    image: redis
    command: [redis-server, --appendonly, "yes"]
    volume: "redis-data:/data"
    node: manager
    port: 6379
config:
  redis: "redis://redis:6379"
  apiTokenFile: /run/secrets/api_token
`;

export const crawlerConfig = () => parseConfig(crawlerYaml);
