import { describe, expect, it } from 'vitest';
import { HOOK_NAMES, hookEnvironment, hookExit, hookInvocation } from '../../../src/plan/hooks.js';

describe('hook invocations', () => {
  it('are the executable in .depl/hooks with every DEPL_* variable set, empty when it does not apply', () => {
    expect(hookInvocation('/work/shop/', 'pre-switch', {
      app: 'shop', domain: 'shop.example', command: 'rollback', version: 'v1', previous: 'v2', live: 'v2', performer: 'ops@laptop',
    })).toEqual({
      hook: 'pre-switch',
      file: '/work/shop/.depl/hooks/pre-switch',
      shown: '.depl/hooks/pre-switch',
      argv: ['/work/shop/.depl/hooks/pre-switch'],
      env: {
        DEPL_HOOK: 'pre-switch', DEPL_APP: 'shop', DEPL_DOMAIN: 'shop.example', DEPL_COMMAND: 'rollback', DEPL_VERSION: 'v1',
        DEPL_PREVIOUS: 'v2', DEPL_LIVE: 'v2', DEPL_PERFORMER: 'ops@laptop', DEPL_BRANCH: '',
      },
      pre: true,
    });
    const first = hookInvocation('/p', 'post-install', { app: 'shop', domain: 'd', command: 'buildinst', version: 'feat', previous: null, live: null, performer: 'me@x', branch: 'feat/x' });
    expect(first.env).toMatchObject({ DEPL_PREVIOUS: '', DEPL_LIVE: '', DEPL_BRANCH: 'feat/x', DEPL_COMMAND: 'buildinst' });
    expect(first.pre).toBe(false);
  });

  it('run with an allowlisted environment: depl\'s secrets and cloud credentials stay out', () => {
    const inv = hookInvocation('/p', 'pre-switch', { app: 'shop', domain: 'd', command: 'switch', version: 'v2', previous: 'v1', live: 'v1', performer: 'me@x' });
    const env = hookEnvironment({
      PATH: '/usr/bin:/bin', HOME: '/home/me', LANG: 'C.UTF-8', TERM: 'xterm', USER: 'me', SHELL: '/bin/sh',
      DEPL_SECRET_DB_PASSWORD: 'hunter2', OS_PASSWORD: 'pw', OS_APPLICATION_CREDENTIAL_SECRET: 'acs', OS_AUTH_URL: 'https://keystone',
      AWS_SECRET_ACCESS_KEY: 'k', GITHUB_TOKEN: 't', SSH_AUTH_SOCK: '/tmp/agent', DEPL_VERSION: 'from-the-shell', DEPL_CONFIG: 'other.yaml',
    }, inv);
    expect(env).toEqual({
      PATH: '/usr/bin:/bin', HOME: '/home/me', LANG: 'C.UTF-8', TERM: 'xterm', USER: 'me', SHELL: '/bin/sh',
      DEPL_HOOK: 'pre-switch', DEPL_APP: 'shop', DEPL_DOMAIN: 'd', DEPL_COMMAND: 'switch', DEPL_VERSION: 'v2', DEPL_PREVIOUS: 'v1', DEPL_LIVE: 'v1', DEPL_PERFORMER: 'me@x', DEPL_BRANCH: '',
    });
  });

  it('name the five hooks and say how one ended', () => {
    expect(HOOK_NAMES).toEqual(['pre-build', 'pre-install', 'post-install', 'pre-switch', 'post-switch']);
    expect(hookExit(3, null)).toBe('exited with 3');
    expect(hookExit(null, 'SIGTERM')).toBe('was killed by SIGTERM');
  });
});
