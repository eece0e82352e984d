# syntax=docker/dockerfile:1
# Production image (docs/deployment.md): PM2 cluster of pulseboard workers, TypeScript run by tsx (no server
# build step), the browser bundle built here. Stages: deps -> build (client bundle) -> prod-deps -> runtime.
ARG NODE_IMAGE=node:20-bookworm-slim

# Every dependency, for the client build (esbuild is a dev dependency).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.base.json ./
COPY client ./client
COPY shared ./shared
RUN NODE_ENV=production npm run build

# Runtime dependencies only (tsx, pm2, koa, redis, …).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# NODE_CLUSTER_SCHED_POLICY=none: the workers accept their own connections (docs/deployment.md).
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    PM2_HOME=/home/node/.pm2 \
    NODE_CLUSTER_SCHED_POLICY=none
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ecosystem.config.cjs ./
COPY bin ./bin
COPY server ./server
COPY shared ./shared
COPY --from=build /app/build ./build
# Code stays owned by root and read-only to the app; it runs as the image's unprivileged `node` user.
USER node
EXPOSE 3000
# Liveness only (/livez): an unhealthy Redis is a readiness matter for the balancer (/healthz), and
# restarting the container would not bring Redis back.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/livez').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# pm2-runtime keeps PM2 in the foreground as PID 1's child, forwards SIGTERM/SIGINT to the workers and
# logs to stdout. The container's stop timeout must exceed PM2's kill_timeout (see docker-compose.yml).
CMD ["node_modules/.bin/pm2-runtime", "ecosystem.config.cjs"]
