import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';

function failure(text: string): UserError {
  try {
    parseConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('expected the config to be rejected');
}

const head = `
app: crawler
domain: crawler.localhost
`;

describe('depl.yaml: secrets and health paths', () => {
  it('mounts declared secrets into services and accessories', () => {
    const config = parseConfig(`${head}
secrets: [api_token, redis_password]
services:
  api: { image: api:1, port: 8000, http: true, secrets: [api_token, redis_password] }
accessories:
  redis: { image: redis, secrets: [redis_password] }
`);
    expect(config.secrets).toEqual(['api_token', 'redis_password']);
    expect(config.services.api?.secrets).toEqual(['api_token', 'redis_password']);
    expect(config.accessories.redis?.secrets).toEqual(['redis_password']);
    expect(config.network).toEqual({ encrypted: 'auto' });
  });

  it('refuses a secret a service uses but the file does not declare, and bad names', () => {
    const error = failure(`${head}
secrets: [api_token, Bad-Name]
services:
  api: { image: api:1, secrets: [api_tokn] }
`);
    expect(error.message).toContain('services.api.secrets[0]: "api_tokn" is not declared in the top-level secrets: list');
    expect(error.message).toMatch(/secrets\[1\]: secret name "Bad-Name" must be lower-case/);
  });

  it('refuses a secret-looking env key, and never prints its value', () => {
    const error = failure(`${head}
services:
  api: { image: api:1, env: { DB_PASSWORD: "hunter2-hunter2", LOG_LEVEL: info } }
`);
    expect(error.message).toContain('services.api.env[DB_PASSWORD]: looks like a secret');
    expect(error.message).not.toContain('hunter2');
  });

  it('prints the kind but not the value of a secret-looking key that has the wrong type', () => {
    const error = failure(`${head}
services:
  api: { image: api:1, env: { ADMIN_PASSWORD: 84937261, PORT: 8000 } }
`);
    expect(error.message).toContain('services.api.env[ADMIN_PASSWORD]: expected string, got a number (value not shown)');
    expect(error.message).not.toContain('84937261');
    // a key that is not secret still shows its value: it helps to fix it
    expect(error.message).toContain('services.api.env.PORT: expected string, got number 8000');
  });

  it('accepts absolute health paths on the service itself', () => {
    for (const health of ['/healthz', '/status?full=1', '/a/b/']) {
      const config = parseConfig(`${head}\nservices:\n  api: { image: api:1, port: 8000, http: true, health: "${health}" }\n`);
      expect(config.services.api?.health).toBe(health);
    }
  });

  it('refuses a health path that names another host, a URL, or not a path', () => {
    for (const health of ['//other-host/ok', 'http://other-host/ok', 'healthz', '/a b', '/\\\\evil']) {
      const error = failure(`${head}\nservices:\n  api: { image: api:1, port: 8000, http: true, health: ${JSON.stringify(health)} }\n`);
      expect(error.exitCode).toBe(2);
      expect(error.message, health).toMatch(/services\.api\.health: health path/);
    }
  });
});
