import { UserError } from '../../errors.js';

/**
 * The HTTPS side of the edge's nginx text (src/plan/nginx.ts renders the rest). Routing stays in the Lua
 * table; what TLS adds needs a reload anyway (nginx reads certificates when it loads its configuration):
 * one port-443 server (http2) per certificate, serving the names it covers with the same routing; on port
 * 80, ACME HTTP-01 challenges answered from the manager's challenge directory (never passed to a version),
 * and every host a certificate covers redirected to https. A host without one stays on plain http.
 */
export interface EdgeTlsRender {
  /** 443 in the edge container; a free port in loopback tests. */
  port: number;
  /** The folder whose files nginx serves at /.well-known/acme-challenge/<file>. */
  challengeDir: string;
  /** The installed certificates; `serial` changes when a certificate does, so the generation does. */
  certificates: EdgeCertificate[];
  /** Strict-Transport-Security max-age in seconds on https answers; absent: no header. */
  hstsMaxAge?: number;
}

export interface EdgeCertificate {
  /** Its folder name in the store: a host, or `wildcard.<domain>`. */
  id: string;
  /** The DNS names it covers (`*.<domain>` for a wildcard). */
  names: string[];
  chain: string;
  key: string;
  serial: string;
}

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/** `http` block lines: TLS settings every https server shares, and which hosts port 80 sends to https. */
export function tlsHttpLines(tls: EdgeTlsRender | undefined): string[] {
  if (tls === undefined || tls.certificates.length === 0) return [];
  const names = [...new Set(tls.certificates.flatMap((c) => c.names))];
  return [
    '  ssl_protocols TLSv1.2 TLSv1.3;',
    '  ssl_prefer_server_ciphers off;',
    '  ssl_session_cache shared:depl_tls:10m;',
    '  ssl_session_timeout 1d;',
    '  ssl_session_tickets off;',
    '',
    '  # Hosts with a certificate: plain http is redirected to https (ACME challenges excepted).',
    '  map $host $depl_https_redirect {',
    '    hostnames;',
    '    default 0;',
    ...names.map((name) => `    ${name} 1;`),
    '  }',
    '',
  ];
}

/** The challenge location, for the port-80 default server and the https servers. */
export function acmeChallengeLines(tls: EdgeTlsRender | undefined): string[] {
  if (tls === undefined) return [];
  return [
    `    location ^~ ${ACME_CHALLENGE_PREFIX} {`,
    `      alias ${tls.challengeDir}/;`,
    '      default_type text/plain;',
    '    }',
  ];
}

/** Inside port 80's routing location: a host with a certificate goes to https instead. */
export function httpsRedirectLines(tls: EdgeTlsRender | undefined): string[] {
  if (tls === undefined || tls.certificates.length === 0) return [];
  const target = tls.port === 443 ? 'https://$host$request_uri' : `https://$host:${tls.port}$request_uri`;
  return ['      if ($depl_https_redirect) {', `        return 301 ${target};`, '      }'];
}

/** Inside an https server's routing location. */
export function hstsLines(tls: EdgeTlsRender | undefined): string[] {
  if (tls?.hstsMaxAge === undefined) return [];
  return [`      add_header Strict-Transport-Security "max-age=${tls.hstsMaxAge}" always;`];
}

/**
 * The https servers: a default one that refuses unknown names in the handshake (no certificate shown),
 * and one per certificate. `body` is what serves a request (the `set` lines and the routing location).
 */
export function httpsServers(tls: EdgeTlsRender | undefined, address: string | undefined, body: string[]): string[] {
  if (tls === undefined || tls.certificates.length === 0) return [];
  const listen = address !== undefined ? `${address}:${tls.port}` : String(tls.port);
  const lines = [
    '',
    '  # HTTPS: unknown names are refused in the TLS handshake.',
    '  server {',
    `    listen ${listen} ssl http2 default_server;`,
    '    server_name _;',
    '    ssl_reject_handshake on;',
    '  }',
  ];
  for (const cert of tls.certificates) {
    lines.push(
      '',
      '  server {',
      `    listen ${listen} ssl http2;`,
      `    server_name ${cert.names.join(' ')};`,
      `    # certificate ${cert.id}, serial ${cert.serial}`,
      `    ssl_certificate ${cert.chain};`,
      `    ssl_certificate_key ${cert.key};`,
      ...acmeChallengeLines(tls),
      ...body,
      '  }',
    );
  }
  return lines;
}

export function assertTlsRender(tls: EdgeTlsRender | undefined): void {
  if (tls === undefined) return;
  if (!Number.isInteger(tls.port) || tls.port < 1 || tls.port > 65535) throw new UserError(`edge https port ${tls.port} is not a port number`, undefined, 'EDGE_TLS_INVALID');
  assertPath(tls.challengeDir);
  if (tls.hstsMaxAge !== undefined && (!Number.isInteger(tls.hstsMaxAge) || tls.hstsMaxAge < 0)) throw new UserError(`HSTS max-age ${tls.hstsMaxAge} is not a whole number of seconds`, undefined, 'EDGE_TLS_INVALID');
  for (const cert of tls.certificates) {
    if (!/^[a-z0-9.-]+$/.test(cert.id)) throw new UserError(`certificate id "${cert.id}" is not a host name`, undefined, 'EDGE_TLS_INVALID');
    if (cert.names.length === 0) throw new UserError(`certificate ${cert.id} names no host`, undefined, 'EDGE_TLS_INVALID');
    for (const name of cert.names) if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(name)) throw new UserError(`certificate name "${name}" of ${cert.id} is not a host name`, undefined, 'EDGE_TLS_INVALID');
    if (!/^[A-Za-z0-9:._-]+$/.test(cert.serial)) throw new UserError(`certificate serial "${cert.serial}" of ${cert.id} is not plain text`, undefined, 'EDGE_TLS_INVALID');
    assertPath(cert.chain);
    assertPath(cert.key);
  }
}

function assertPath(path: string): void {
  if (!/^\/[A-Za-z0-9._/-]*$/.test(path) || path.includes('..')) throw new UserError(`edge TLS path "${path}" must be absolute and contain only letters, digits, ".", "_", "-" and "/"`, undefined, 'EDGE_TLS_INVALID');
}
