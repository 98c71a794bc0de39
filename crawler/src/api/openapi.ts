/** The API's contract, served at /openapi.json. Kept next to the routes it describes (app.ts). */
const error = { $ref: '#/components/schemas/Error' };
const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const paging = [
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
];
/** GET /v1/jobs/{id}/files's filters (validated by core/image-files.ts' fileFilterSchema). */
const fileFilters = [
  { name: 'type', in: 'query', schema: { type: 'string', pattern: '^(png|jpeg|gif|webp|svg|avif|bmp|ico)(,(png|jpeg|gif|webp|svg|avif|bmp|ico))*$' }, description: 'comma-separated types (sniffed from the bytes), e.g. png,jpeg' },
  { name: 'minBytes', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'at least this many bytes' },
  { name: 'maxBytes', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'at most this many bytes' },
  { name: 'minWidth', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'at least this many pixels wide' },
  { name: 'minHeight', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'at least this many pixels high' },
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
          scope: { type: 'string', enum: ['host', 'origin', 'domain', 'any'], default: 'host', description: 'origin: scheme, host and port' },
          include: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 500 }, description: 'links followed must match one: globs (* within a path segment, ** across) or /regex/flags (a linear-time subset: no backreferences or lookaround); at most 50 include and exclude patterns together' },
          exclude: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 500 }, description: 'links matching one are not followed' },
          useSitemaps: { type: 'boolean', default: false, description: 'also start from robots.txt Sitemap: lines (else /sitemap.xml) of each start origin' },
          fetchImages: { type: 'boolean', default: false, description: 'download each image once (same address, robots and politeness rules as pages); type and size read from the bytes, SHA-256, one stored file per content' },
          maxImageBytes: { type: 'integer', minimum: 1, default: 5242880, description: 'larger images are recorded as too-large, not stored; at most the service\'s images.maxImageBytes' },
          imageTypes: { type: 'array', items: { type: 'string', enum: ['png', 'jpeg', 'gif', 'webp', 'svg', 'avif', 'bmp', 'ico'] }, description: 'types (sniffed from the bytes) that are stored; default all' },
          archive: { type: 'boolean', default: false, description: 'keep every page and image answer (headers and body) for GET /v1/jobs/{id}/archive.wacz' },
        },
      },
      Job: {
        type: 'object',
        properties: {
          id: { type: 'string', format: 'uuid' },
          status: { type: 'string', enum: ['running', 'done', 'cancelled', 'deleting'] },
          createdAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
          finishedAt: { type: ['string', 'null'], format: 'date-time' },
          request: { $ref: '#/components/schemas/JobRequest' },
          counts: { type: 'object', properties: Object.fromEntries(['queued', 'pending', 'fetched', 'failed', 'robots', 'blocked', 'cancelled', 'images', 'dataImages', 'capped', 'imagesStored', 'imageFiles', 'imagesNotStored'].map((k) => [k, { type: 'integer' }])) },
          maxPagesReached: { type: 'boolean' },
          provenance: { type: 'object', description: 'the crawler release and image id the deployment gave its services (DEPL_VERSION, DEPL_IMAGE_ID; else "unknown") and the user agent', properties: { crawlerVersion: { type: 'string' }, imageDigest: { type: 'string' }, userAgent: { type: 'string' } } },
        },
      },
      ImageFile: {
        type: 'object', description: 'one distinct content a fetchImages job stored',
        properties: {
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          type: { type: 'string', enum: ['png', 'jpeg', 'gif', 'webp', 'svg', 'avif', 'bmp', 'ico'], description: 'sniffed from the bytes, never the Content-Type' },
          bytes: { type: 'integer' }, width: { type: ['integer', 'null'] }, height: { type: ['integer', 'null'] },
          location: { type: 'string', description: 'its name in the image store (config images.store: redis, the default; directory under images.storePath; swift, as <job>/<location> in images.swift.container): sha256/ab/<sha256>.<ext>' },
          href: { type: 'string', description: 'where this API serves the bytes: /v1/jobs/{id}/files/{sha256}' },
          urls: { type: 'array', items: { type: 'string' }, description: 'every image URL that gave this content' },
          pages: { type: 'array', items: { type: 'string' }, description: 'every page those URLs were found on' },
        },
      },
      Image: { type: 'object', properties: { url: { type: 'string' }, page: { type: 'string' }, alt: { type: 'string' }, kind: { type: 'string', enum: ['img', 'srcset', 'picture', 'og', 'icon', 'lazy', 'css', 'svg', 'poster', 'input'] } } },
      Page: {
        type: 'object',
        properties: {
          url: { type: 'string' }, depth: { type: 'integer', description: 'shortest link distance from a start URL' },
          outcome: { type: 'string', enum: ['fetched', 'failed', 'robots', 'blocked', 'cancelled'] }, status: { type: 'integer' }, finalUrl: { type: 'string' },
          images: { type: 'integer' }, links: { type: 'integer' }, dataImages: { type: 'integer' }, encoding: { type: 'string' },
          linksDropped: { type: 'integer', description: 'distinct links left out by the per-page cap' }, imagesDropped: { type: 'integer' },
          linksUnchecked: { type: 'integer', description: 'links the include/exclude patterns could not check (over 2,048 characters, or the page\'s matching budget spent); not followed' },
          truncated: { type: 'boolean' }, error: { type: 'string' },
          blockPage: { type: 'string', description: 'outcome blocked: why every try gave a rate-limit or block page (Cloudflare challenge, captcha, access denied, HTTP 429)' },
          optOuts: { type: 'array', items: { type: 'string', enum: ['noindex', 'nofollow', 'noimageindex', 'noai', 'noimageai', 'noarchive'] }, description: 'the site\'s opt-outs for this page (X-Robots-Tag, <meta name="robots">) that were honoured: nofollow leaves its links unfollowed, noarchive keeps it out of an archive job\'s WACZ, the others leave its images out of the results' },
          imagesWithheld: { type: 'integer', description: 'images found on the page and left out because of its opt-outs' },
        },
      },
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
      delete: {
        summary: 'Delete a job that is not running, with everything of it: its record, queued tasks, results and indexes, and its stored contents (in the directory store, only those no other job holds)',
        description: 'A running job is refused with 409 job_running: cancel it first (POST /v1/jobs/{id}/cancel). While a delete is under way the job is listed with status deleting; a delete cut short (503 store_unavailable) is finished by sending it again. An unknown (or already deleted) job is a 404.',
        security: [{ bearer: [] }], parameters: [jobId],
        responses: { '204': { description: 'deleted; X-Contents-Removed and X-Tasks-Removed count what went from the image store and the queues' }, ...errors(401, 404, 409, 503) },
      },
    },
    '/v1/jobs/{id}/cancel': {
      post: { summary: 'Cancel a running job: no new page or image is started, what is in flight finishes, its data is kept (a job that has ended is returned unchanged)', security: [{ bearer: [] }], parameters: [jobId], responses: { '200': { description: 'the job', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errors(401, 404, 503) } },
    },
    '/v1/jobs/{id}/images': {
      get: { summary: 'Images found (each once, with the page it was first found on)', parameters: [jobId, ...paging], responses: { '200': { description: 'a page of images' }, ...errors(400, 404, 503) } },
    },
    '/v1/jobs/{id}/files': {
      get: {
        summary: 'fetchImages jobs: the distinct contents stored, each with sha256, type, bytes, width, height, location in the image store, and every URL and page it was found at',
        description: 'Filters combine (all must hold); an unknown type, a negative or non-integer bound or an unknown parameter is a 400 naming it. A file whose dimensions are unknown (an SVG without width/height or viewBox) fails minWidth and minHeight.',
        parameters: [jobId, ...paging, ...fileFilters],
        responses: {
          '200': { description: 'a page of files', content: { 'application/json': { schema: { type: 'object', properties: { total: { type: 'integer', description: 'files matching the filters' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: { $ref: '#/components/schemas/ImageFile' } } } } } } },
          ...errors(400, 404, 503),
        },
      },
    },
    '/v1/jobs/{id}/gallery': {
      get: {
        summary: 'fetchImages jobs: an HTML page of the stored images as thumbnails, grouped by the page they were found on, metadata on hover or focus',
        description: 'Paged over the job\'s image URLs (offset, limit; default 200). Behind the token unless config api.public.jobReads. The page runs no script; its Content-Security-Policy allows its own inline style (by hash) and images from this origin only.',
        parameters: [jobId, { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } }],
        responses: { '200': { description: 'the gallery', content: { 'text/html': { schema: { type: 'string' } } } }, ...errors(400, 404, 409, 503) },
      },
    },
    '/v1/jobs/{id}/files/{sha256}': {
      get: {
        summary: 'The bytes of one stored content (SVG served sandboxed); its ETag is its SHA-256, and one byte range (Range with If-Range) resumes a cut download',
        parameters: [
          jobId, { name: 'sha256', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
          { name: 'expires', in: 'query', schema: { type: 'integer' }, description: 'with sig: a signed link from the gallery, which opens this file without the token until then (Unix seconds)' },
          { name: 'sig', in: 'query', schema: { type: 'string' }, description: 'the link\'s HMAC-SHA256 over the job, the file and expires' },
        ],
        responses: { '200': { description: 'the image' }, '206': { description: 'the range asked for' }, ...errors(403, 404, 410, 416, 503) },
      },
    },
    '/v1/jobs/{id}/archive.wacz': {
      get: {
        summary: 'archive jobs, once ended: a WACZ 1.1.1 of every page and image fetched (WARC/1.1 request and response records, CDXJ index, pages.jsonl, datapackage.json with SHA-256 and size of every file and the job\'s provenance)',
        parameters: [jobId], responses: { '200': { description: 'application/wacz+zip; X-WACZ-Records and X-WACZ-Pages count what it holds' }, ...errors(404, 409, 503) },
      },
    },
    '/v1/jobs/{id}/pages': {
      get: { summary: 'Pages visited and their outcome', parameters: [jobId, ...paging], responses: { '200': { description: 'a page of pages' }, ...errors(400, 404, 503) } },
    },
    '/healthz': { get: { summary: 'The process is up', responses: { '200': { description: 'ok' } } } },
    '/readyz': { get: { summary: 'Redis is reachable', responses: { '200': { description: 'ready' }, ...errors(503) } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text/plain; version=0.0.4' } } } },
  },
} as const;
