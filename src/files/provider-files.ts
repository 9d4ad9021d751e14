/**
 * Provider file ids on demand: a stored file is uploaded to Kimi's or GLM's
 * files API only when a tool needs the provider to read it, the id is kept per
 * (file, provider) in `exai.provider_files`, and a provider that answers the id
 * is gone (expired, deleted) gets the file again, once. The same bytes uploaded
 * again by the same user are the same file row, so they reuse the id too.
 */
import type { Config } from '../config.js';
import { asService, asUser } from '../db/session.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isGoneFileError, providerFileApi, type ProviderFileApi } from '../providers/file-api.js';
import type { FileHandler } from './file-handler.js';

/** Kimi takes files up to 100 MB; GLM documents less, and answers too_large itself when so. */
const maxProviderFileBytes = 100 * 1024 * 1024;

export interface ProviderFileText {
  text: string;
  providerFileId: string;
  /** This call uploaded the file (the first use, or the provider had lost the id). */
  uploaded: boolean;
}

export class ProviderFiles {
  constructor(
    private readonly deps: { db: Database; files: FileHandler; apis: ReadonlyMap<string, ProviderFileApi>; logger: Logger },
  ) {}

  /** Kimi and GLM, when their keys are set. */
  static fromConfig(config: Pick<Config, 'providers'>, deps: { db: Database; files: FileHandler; logger: Logger }): ProviderFiles {
    const apis = new Map<string, ProviderFileApi>();
    const { kimi, glm, timeoutMs } = config.providers;
    if (kimi.apiKey !== undefined) apis.set('kimi', providerFileApi({ provider: 'kimi', baseUrl: kimi.baseUrl, apiKey: kimi.apiKey, timeoutMs }));
    if (glm.apiKey !== undefined) apis.set('glm', providerFileApi({ provider: 'glm', baseUrl: glm.baseUrl, apiKey: glm.apiKey, timeoutMs }));
    return new ProviderFiles({ ...deps, apis });
  }

  /** Deletes a provider's copy of a purged file; a failure is logged (the provider expires files itself). */
  async deleteCopy(provider: string, providerFileId: string): Promise<void> {
    const api = this.deps.apis.get(provider);
    if (api === undefined) return;
    try {
      await api.deleteFile(providerFileId);
    } catch (error) {
      this.deps.logger.warn({ provider, providerFileId, err: error instanceof Error ? error.message : String(error) }, 'could not delete a purged file at its provider');
    }
  }

  supports(provider: string): boolean {
    return this.deps.apis.has(provider);
  }

  /** The provider's reading of the file (Kimi: the extracted text, as JSON), uploading it when needed. */
  async extractedText(userId: string, fileId: string, provider: string, signal?: AbortSignal): Promise<ProviderFileText> {
    const api = this.deps.apis.get(provider);
    if (api === undefined) throw new ExaiError('invalid_argument', `${provider} has no files API configured here; ask with a Kimi or GLM model.`);
    const file = await this.deps.files.info(userId, fileId);
    const known = await asUser(this.deps.db, userId, (tx) =>
      tx.query<{ provider_file_id: string }>(
        'SELECT provider_file_id FROM exai.provider_files WHERE file_id = $1 AND provider = $2 AND (expires_at IS NULL OR expires_at > now())',
        [file.id, provider],
      ),
    );
    const cached = known.rows[0]?.provider_file_id;
    if (cached !== undefined) {
      try {
        return { text: await api.fileContent(cached, signal === undefined ? {} : { signal }), providerFileId: cached, uploaded: false };
      } catch (error) {
        if (!isGoneFileError(error)) throw error;
        this.deps.logger.info({ provider, fileId: file.id }, 'provider lost a file id; uploading the file again');
        await asService(this.deps.db, (tx) => tx.query('DELETE FROM exai.provider_files WHERE file_id = $1 AND provider = $2 AND provider_file_id = $3', [file.id, provider, cached]));
      }
    }
    const { bytes } = await this.deps.files.readBytes(userId, file.id, maxProviderFileBytes);
    const uploaded = await api.uploadFile({ name: baseName(file.name), mimeType: file.mimeType, bytes, ...(signal === undefined ? {} : { signal }) });
    await asService(this.deps.db, (tx) =>
      tx.query(
        `INSERT INTO exai.provider_files (file_id, owner_id, provider, provider_file_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (file_id, provider) DO UPDATE SET provider_file_id = EXCLUDED.provider_file_id, uploaded_at = now(), expires_at = NULL`,
        [file.id, userId, provider, uploaded.id],
      ),
    );
    return { text: await api.fileContent(uploaded.id, signal === undefined ? {} : { signal }), providerFileId: uploaded.id, uploaded: true };
  }
}

/** Providers show the name; a path's folders are the user's business. */
function baseName(name: string): string {
  return name.split(/[\\/]/).filter((part) => part !== '').at(-1) ?? 'file';
}
