# The crawler's image, built by `depl buildinst` (build context: the repository root, filtered by .dockerignore).
# Multi-stage: the toolchain (npm, TypeScript, dev dependencies) stays in the build stages; the runtime image
# has node, the production node_modules and the compiled crawler only.
# Base images are build arguments so an offline cluster can use the ones depl makes (depl.yaml `images:`).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG NODE_BUILD_IMAGE=node:20-bookworm

FROM ${NODE_BUILD_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts are not run: no native addon is needed by the crawler, and none is compiled into the image.
# --include=dev: the base image may set NODE_ENV=production, which would leave TypeScript out.
# npm 11 refuses a lockfile that lacks other platforms' optional packages; then install from it without ci.
RUN npm ci --include=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 || { echo 'npm ci refused the lockfile; installing the locked versions with npm install' \
      && npm install --include=dev --no-save --ignore-scripts --no-audit --no-fund --loglevel=error; }

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Only the crawler's entry points and what they import: the operator CLI is not part of the image.
RUN printf '%s\n' '{"extends":"./tsconfig.build.json","include":[],"files":["src/crawler/api/server.ts","src/crawler/worker/main.ts"],"compilerOptions":{"sourceMap":false}}' > tsconfig.crawler.json \
 && npx tsc -p tsconfig.crawler.json

FROM deps AS production-deps
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
COPY --from=production-deps /src/package.json ./package.json
COPY --from=production-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER nobody
EXPOSE 8000
CMD ["node", "dist/crawler/api/server.js"]
