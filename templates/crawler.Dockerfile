# The crawler's image, built by `depl buildinst` (build context: the repository root, filtered by .dockerignore).
# The crawler is its own npm workspace package (crawler/): only its manifest, the shared lockfile and its sources
# enter the build, and only its own dependencies are installed (`npm ci -w @depl/crawler`), not depl's.
# Multi-stage: the toolchain (npm, TypeScript) stays in the build stages; the runtime image has node, the
# crawler's production node_modules and the compiled crawler only.
# Base images are build arguments so an offline cluster can use the ones depl makes (depl.yaml `images:`).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG NODE_BUILD_IMAGE=node:20-bookworm

FROM ${NODE_BUILD_IMAGE} AS manifests
WORKDIR /src
COPY package.json package-lock.json ./
COPY crawler/package.json ./crawler/package.json

# Scripts are not run: no native addon is needed by the crawler, and none is compiled into the image.
# npm 11 refuses a lockfile that lacks other platforms' optional packages; then install from it without ci.
FROM manifests AS deps
# --include=dev: the base image may set NODE_ENV=production, which would leave TypeScript out.
RUN npm ci -w @depl/crawler --include=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 || { echo 'npm ci refused the lockfile; installing the locked versions with npm install' \
      && npm install -w @depl/crawler --include=dev --no-save --ignore-scripts --no-audit --no-fund --loglevel=error; }

FROM deps AS build
COPY crawler/tsconfig.json ./crawler/tsconfig.json
COPY crawler/src ./crawler/src
# Compiled to dist/crawler/ so the entry points keep the paths depl.yaml files name (dist/crawler/api/server.js).
RUN npx tsc -p crawler/tsconfig.json --outDir /src/out/crawler --sourceMap false --declaration false

# The production dependencies are the development install with its dev packages pruned: no second download.
# Same files as a second `npm ci --omit=dev` gave (every file of node_modules compared), in 8-10 s where that
# step took 24-46 s (2026-12-07, classic builder, offline node image, a 2-core machine at load 18-20).
FROM deps AS production-deps
RUN npm prune -w @depl/crawler --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && rm -rf node_modules/@depl node_modules/@types node_modules/undici-types \
 && mkdir -p crawler/node_modules
# (@depl/crawler is the workspace's own link; the shared lockfile marks @types/node as a production package
#  because depl's @inquirer/* name it as a peer: type declarations are not run, so they stay out.)

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# the crawler's own manifest ("type": "module")
COPY --from=production-deps /src/crawler/package.json ./package.json
COPY --from=production-deps /src/node_modules ./node_modules
# npm nests a crawler dependency under crawler/node_modules when the hoisted place is taken by another version;
# beside the compiled crawler it is found first, as it is in the workspace (usually empty).
COPY --from=production-deps /src/crawler/node_modules ./dist/crawler/node_modules
COPY --from=build /src/out ./dist
USER nobody
EXPOSE 8000
CMD ["node", "dist/crawler/api/server.js"]
