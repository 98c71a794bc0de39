/** The API's contract, served at /openapi.json. Kept next to the routes it describes (app.ts). */
const error = { $ref: '#/components/schemas/Error' };
const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const paging = [
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
];
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: { 'application/json': { schema: error } } }]));

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'depl crawler API', version: '1.0.0', description: 'Image crawler: submit crawl jobs, follow them, read the images found.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'array', items: { type: 'string' } } } } } },
      JobRequest: {
        type: 'object', required: ['urls'], additionalProperties: false,
        properties: {
          urls: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', format: 'uri', description: 'http or https only' } },
          maxDepth: { type: 'integer', minimum: 0, maximum: 20, default: 2 },
          maxPages: { type: 'integer', minimum: 1, default: 100 },
          sameHost: { type: 'boolean', description: 'shorthand: true = scope "host", false = scope "any"' },
          scope: { type: 'string', enum: ['host', 'origin', 'domain', 'any'], default: 'host' },
        },
      },
      Job: {
        type: 'object',
        properties: {
          id: { type: 'string', format: 'uuid' },
          status: { type: 'string', enum: ['running', 'done', 'cancelled'] },
          createdAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
          finishedAt: { type: ['string', 'null'], format: 'date-time' },
          request: { $ref: '#/components/schemas/JobRequest' },
          counts: { type: 'object', properties: Object.fromEntries(['queued', 'pending', 'fetched', 'failed', 'robots', 'blocked', 'cancelled', 'images'].map((k) => [k, { type: 'integer' }])) },
        },
      },
      Image: { type: 'object', properties: { url: { type: 'string' }, page: { type: 'string' }, alt: { type: 'string' } } },
      Page: { type: 'object', properties: { url: { type: 'string' }, depth: { type: 'integer' }, outcome: { type: 'string', enum: ['fetched', 'failed', 'robots', 'blocked'] }, status: { type: 'integer' }, images: { type: 'integer' }, error: { type: 'string' } } },
    },
  },
  paths: {
    '/v1/jobs': {
      post: {
        summary: 'Create a crawl job',
        security: [{ bearer: [] }],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/JobRequest' } }, 'text/plain': { schema: { type: 'string', description: 'one URL per line' } } } },
        responses: { '201': { description: 'created', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errors(400, 401, 413, 415, 503) },
      },
    },
    '/v1/jobs/{id}': {
      get: { summary: 'Job status and counts', parameters: [jobId], responses: { '200': { description: 'the job', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errors(404, 503) } },
      delete: { summary: 'Cancel a job', security: [{ bearer: [] }], parameters: [jobId], responses: { '200': { description: 'the cancelled job' }, ...errors(401, 404, 503) } },
    },
    '/v1/jobs/{id}/images': {
      get: { summary: 'Images found (each once, with the page it was first found on)', parameters: [jobId, ...paging], responses: { '200': { description: 'a page of images' }, ...errors(400, 404, 503) } },
    },
    '/v1/jobs/{id}/pages': {
      get: { summary: 'Pages visited and their outcome', parameters: [jobId, ...paging], responses: { '200': { description: 'a page of pages' }, ...errors(400, 404, 503) } },
    },
    '/healthz': { get: { summary: 'The process is up', responses: { '200': { description: 'ok' } } } },
    '/readyz': { get: { summary: 'Redis is reachable', responses: { '200': { description: 'ready' }, ...errors(503) } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text/plain; version=0.0.4' } } } },
  },
} as const;
