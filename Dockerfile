# syntax=docker/dockerfile:1
#
# wooxy-cdc: build with the dev toolchain, run with production dependencies only, as a non-root user.
#
#   docker build -t wooxy-cdc .
#   docker run --rm -v "$PWD/my.yaml:/config/wooxy-cdc.yaml:ro" \
#     -e DATABASE_URL -e WOOXY_ACCESS_TOKEN -e WOOXY_LIST_ID -p 9464:9464 wooxy-cdc
#
# The configuration is mounted at /config/wooxy-cdc.yaml (read-only is fine); secrets come from the
# environment through ${VAR} references in it, never from the file or the image. Several containers with the
# same configuration elect one leader (Postgres advisory lock); the others are standbys.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
# `prepare` compiles to dist/ during the install.
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    WOOXY_CDC_HTTP_PORT=9464
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. Optional ones are embedded-postgres's server binaries (used by `demo` and the
# tests on machines without Postgres, never by `run`) and pg's Cloudflare socket shim: ~100 MB not shipped.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
# V8 grows its heap lazily up to limits sized for the machine, so with default flags the connector's RSS
# reached ~210 MB on a 100k-change backlog although its live heap stays well under 64 MB. These limits keep
# it near 125 MB at the same speed (npm run bench, memory figure; README "Performance"). Set after npm ci,
# which needs a larger heap than the connector. An ENV replaces the variable whole: the source-map flag set
# above must be repeated, or stack traces point into dist/ instead of src/.
ENV NODE_OPTIONS="--enable-source-maps --max-old-space-size=96 --max-semi-space-size=4"
USER node
EXPOSE 9464
# Liveness only: /healthz answers while the process is alive. A standby is healthy too (readiness, /readyz,
# is for orchestrators that route traffic). WOOXY_CDC_HTTP_PORT must match http.port in the configuration.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+process.env.WOOXY_CDC_HTTP_PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains (stop reading, acknowledge what is durable, record calls in flight, release the lock);
# give the container at least delivery.drainTimeoutMs + 10 s to stop (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/wooxy-cdc.js"]
CMD ["run", "--config", "/config/wooxy-cdc.yaml"]
