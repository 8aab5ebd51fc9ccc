# syntax=docker/dockerfile:1
# Build: compile TypeScript with dev dependencies; run: production dependencies only, non-root.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm ci && npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
# V8 grows its heap lazily up to limits sized for the machine, so with default flags the connector's RSS
# reached ~210 MB on a 100k-change backlog although its live heap stays well under 64 MB. These limits keep
# it near 125 MB at the same speed (npm run bench, memory figure; README "Performance"). Set after npm ci,
# which needs a larger heap than the connector.
ENV NODE_OPTIONS="--max-old-space-size=96 --max-semi-space-size=4"
USER node
EXPOSE 9464
# /healthz answers while the process is alive (issue 6 adds the server); config is mounted at /config.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD node -e "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/wooxy-cdc.js"]
CMD ["run", "--config", "/config/wooxy-cdc.yaml"]
