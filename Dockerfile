# exai: build with dev dependencies, run with production ones only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    EXAI_HOME=/data \
    EXAI_HOST=0.0.0.0 \
    EXAI_PORT=8079
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY src/db/sql ./src/db/sql
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8079
# exai health asks the running server's /health: exit 0 when ok or degraded (Redis away), 1 when down or unreachable.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "bin/exai.js", "health", "--timeout", "5000"]
CMD ["node", "bin/exai.js", "serve"]
