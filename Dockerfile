# syntax=docker/dockerfile:1
# tributary worker image. Build: docker build -t tributary .
# The production install below (npm ci of package.json + lock with --omit=dev --omit=optional
# --ignore-scripts, then bin/ and dist/) is the one scripts/verify-production-install.sh runs in CI,
# where there is no Docker engine; test/unit/dockerfile.test.ts keeps the two in step.

# Node 22 is the current maintenance LTS; the code runs on Node >= 20 (package.json engines), the
# floor the test suite runs on. @google-cloud/pubsub v5 supports both.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --ignore-scripts: `prepare` would build before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. --omit=optional leaves out DuckDB (a development sink);
# --ignore-scripts because `prepare` needs the TypeScript compiler, which is a dev dependency.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
# tini as PID 1: forwards SIGTERM to node and reaps zombies; node itself drains on SIGTERM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
# Nothing is written at run time (logs go to stdout), so a read-only root filesystem works.
# The numeric uid lets Kubernetes verify runAsNonRoot; 1000 is the image's `node` user.
USER 1000:1000
EXPOSE 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/tributary.js"]
CMD ["run", "--config", "/etc/tributary/tributary.yaml"]
