/**
 * HTTP authentication as an OAuth 2.0 protected resource (the MCP
 * authorization spec, RFC 9728 and RFC 6750): a request without valid
 * credentials gets 401 with a WWW-Authenticate header that points at the
 * protected-resource metadata; one without the needed scope gets 403.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailure, type Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { hasScope } from '../auth/principal.js';
import { allScopes, defaultUserScopes, type Scope } from '../auth/scopes.js';
import type { Config } from '../config.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on protected routes. */
    principal?: Principal;
  }
}

export function isLoopbackAddress(address: string | undefined): boolean {
  return address === '::1' || address?.startsWith('127.') === true || address?.startsWith('::ffff:127.') === true;
}

/** This server's base URL as clients see it: EXAI_PUBLIC_URL, else from the request. */
export function baseUrl(config: Config, request: FastifyRequest): string {
  return config.auth.publicUrl ?? `${request.protocol}://${request.host}`;
}

const metadataPath = '/.well-known/oauth-protected-resource';

/** A value for a quoted-string parameter: no quotes or backslashes, printable ASCII only. */
function quoted(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '');
}

function challenge(config: Config, request: FastifyRequest, parts: Record<string, string>): string {
  const parameters = { realm: 'exai', resource_metadata: `${baseUrl(config, request)}${metadataPath}${request.routeOptions.url ?? ''}`, ...parts };
  return `Bearer ${Object.entries(parameters).map(([key, value]) => `${key}="${quoted(value)}"`).join(', ')}`;
}

async function refuse(reply: FastifyReply, config: Config, request: FastifyRequest, failure: AuthFailure, scope: Scope): Promise<void> {
  if (failure.status !== 401) {
    const code = failure.status === 429 ? 'rate_limited' : 'auth_unavailable';
    await reply
      .status(failure.status)
      .header('retry-after', String(failure.retryAfterS ?? 60))
      .send({ error: { code, message: failure.message, retry_after_s: failure.retryAfterS } });
    return;
  }
  const parts: Record<string, string> = failure.bearerError === undefined ? { scope } : { error: failure.bearerError, error_description: failure.message, scope };
  // A key made without --scopes lacks this scope: say how to make one that has it.
  const message = defaultUserScopes.includes(scope) ? failure.message : `${failure.message} This endpoint needs the scope ${scope}: \`exai keys create --user <handle> --scopes ${scope}\`.`;
  await reply
    .status(401)
    .header('www-authenticate', challenge(config, request, parts))
    .send({ error: { code: 'unauthorized', message } });
}

/** A route hook (run on request, before the body is read) that authenticates the request and demands `scope`. */
export function requireScope(authenticator: Authenticator, config: Config, scope: Scope) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let principal: Principal;
    try {
      const header = request.headers.authorization;
      const actAs = request.headers['x-exai-user'];
      principal = await authenticator.authenticate({
        authorization: header,
        source: request.ip,
        // A proxy on this machine makes every client look local: a forwarded request is never loopback.
        loopback: isLoopbackAddress(request.socket.remoteAddress) && request.headers['x-forwarded-for'] === undefined && request.headers.forwarded === undefined,
        actAs: typeof actAs === 'string' ? actAs : undefined,
      });
    } catch (error) {
      if (error instanceof AuthFailure) return refuse(reply, config, request, error, scope);
      throw error;
    }
    if (!hasScope(principal, scope)) {
      const message = `This credential lacks the scope ${scope}.`;
      await reply
        .status(403)
        .header('www-authenticate', challenge(config, request, { error: 'insufficient_scope', scope, error_description: message }))
        .send({ error: { code: 'forbidden', message } });
      return;
    }
    request.principal = principal;
  };
}

/** RFC 9728 metadata, at the well-known path and at its per-resource form. */
export function registerProtectedResourceMetadata(app: FastifyInstance, config: Config, resources: string[]): void {
  const describe = (request: FastifyRequest, resource: string) => ({
    resource: `${baseUrl(config, request)}${resource}`,
    ...(config.auth.jwtIssuer === undefined ? {} : { authorization_servers: [config.auth.jwtIssuer] }),
    bearer_methods_supported: ['header'],
    scopes_supported: [...allScopes],
    resource_name: 'exai',
  });
  app.get(metadataPath, async (request) => describe(request, resources[0] ?? ''));
  for (const resource of resources) app.get(`${metadataPath}${resource}`, async (request) => describe(request, resource));
}
