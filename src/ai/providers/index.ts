// Picks the provider the configuration asks for (SPEC §3 AI_PROVIDER).
import path from 'node:path';
import type { Config } from '../../config/env.js';
import type { AiProvider, ProviderReport } from '../provider.js';
import { LocalProvider } from './local.provider.js';
import { OpenAiProvider } from './openai.provider.js';

export function createProvider(config: Config, report?: ProviderReport): AiProvider | undefined {
  if (config.AI_PROVIDER === 'none') return undefined;
  if (config.AI_PROVIDER === 'openai') {
    return new OpenAiProvider({
      apiKey: config.OPENAI_API_KEY,
      baseURL: config.OPENAI_BASE_URL,
      model: config.AI_MODEL ?? 'gpt-4o-mini',
      timeoutMs: config.AI_TIMEOUT,
      maxRetries: config.AI_MAX_RETRIES,
      contextWindow: config.AI_CONTEXT_WINDOW,
      vision: config.AI_VISION,
      ...(report ? { report } : {}),
    });
  }
  const local = new LocalProvider({
    modelPath: config.AI_MODEL_PATH,
    modelsDir: path.join(config.DATA_DIR, 'models'),
    threads: config.AI_LOCAL_THREADS,
    parallel: config.AI_LOCAL_PARALLEL,
    ...(config.AI_LOCAL_CONTEXT ? { contextSize: config.AI_LOCAL_CONTEXT } : {}),
    showDownloadProgress: process.stdout.isTTY === true,
    ...(report ? { report } : {}),
  });
  local.preload();
  return local;
}
