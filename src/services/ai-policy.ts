// The operator's AI settings are ceilings (SPEC §8): a conversation may pick a model from
// AI_MODELS (unset: only the default) and ask for at most AI_MAX_OUTPUT_TOKENS. Checked when
// settings are written (400 naming the limit) and applied again when an answer starts, so a
// ceiling lowered later holds for conversations saved before.
import type { ConversationSettings } from '../db/schema.js';
import { validationError } from '../errors.js';

export class AiPolicy {
  constructor(
    readonly options: {
      defaultModel: string | undefined;
      /** AI_MODELS; undefined: only the default model. */
      models: readonly string[] | undefined;
      maxOutputTokens: number;
      maxPendingPerUser: number;
    },
  ) {}

  get maxPendingPerUser(): number {
    return this.options.maxPendingPerUser;
  }

  /** The models a conversation may choose. */
  get allowedModels(): readonly string[] {
    const { models, defaultModel } = this.options;
    if (models?.length) return models;
    return defaultModel ? [defaultModel] : [];
  }

  /** 400 naming the limit when settings ask for more than the operator allows. */
  check(settings: { model?: string | null; maxOutputTokens?: number | null } | undefined): void {
    if (!settings) return;
    const problems: Array<{ path: string; message: string }> = [];
    const { maxOutputTokens } = this.options;
    if (
      typeof settings.maxOutputTokens === 'number' &&
      settings.maxOutputTokens > maxOutputTokens
    ) {
      problems.push({
        path: 'settings.maxOutputTokens',
        message: `must be at most ${maxOutputTokens} (AI_MAX_OUTPUT_TOKENS, this server's ceiling)`,
      });
    }
    if (typeof settings.model === 'string' && !this.allowedModels.includes(settings.model)) {
      const allowed = this.allowedModels;
      problems.push({
        path: 'settings.model',
        message: allowed.length
          ? `must be one of the models this server offers (AI_MODELS): ${allowed.join(', ')}`
          : 'cannot be chosen: this server offers no models (AI_MODELS)',
      });
    }
    if (problems.length) {
      throw validationError(
        `Invalid request body: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
        problems,
      );
    }
  }

  /** The model an answer uses: the conversation's choice while the server still offers it. */
  modelFor(settings: ConversationSettings | null | undefined): string {
    const chosen = settings?.model;
    if (chosen && this.allowedModels.includes(chosen)) return chosen;
    return this.options.defaultModel ?? chosen ?? '';
  }

  /** Output tokens an answer may use: the conversation's wish, never above the ceiling. */
  maxOutputTokensFor(settings: ConversationSettings | null | undefined): number {
    const wish = settings?.maxOutputTokens ?? this.options.maxOutputTokens;
    return Math.min(wish, this.options.maxOutputTokens);
  }
}
