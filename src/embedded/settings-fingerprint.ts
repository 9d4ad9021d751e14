/**
 * A digest of the settings that change what a server does for its clients
 * (providers, tools, file roots, limits, storage). `exai stdio` compares its
 * own with the running owner's, to say when the owner was started otherwise.
 * Only a digest is kept: secrets are part of it but cannot be read back.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';

export function settingsFingerprint(config: Config): string {
  const relevant = {
    providers: config.providers,
    tools: config.tools,
    files: config.files,
    limits: config.limits,
    localUser: config.localUser,
    database: config.database.url ?? null,
    redis: config.redis.url ?? null,
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 32);
}
