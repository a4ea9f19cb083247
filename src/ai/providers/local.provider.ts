// A GGUF model running in this process through node-llama-cpp: one loaded model shared by every
// generation, a bounded number of context sequences (the rest wait), the model's own chat
// template, and its real tokenizer.
import path from 'node:path';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { createSemaphore, type Semaphore } from '../../utils/semaphore.js';
import { ChunkQueue } from '../chunk-queue.js';
import {
  ProviderError,
  textOf,
  type AiProvider,
  type ChatMessage,
  type GenerationRequest,
  type ProviderReport,
  type StreamChunk,
} from '../provider.js';

export interface LocalProviderOptions {
  /** A GGUF file; unset: DEFAULT_MODEL is downloaded into `modelsDir` on first use. */
  modelPath: string | undefined;
  modelsDir: string;
  /** CPU threads for evaluation. node-llama-cpp's default of 4 is ~300× slower on 2 cores. */
  threads: number;
  /** Generations evaluated at once (context sequences); the rest wait their turn. */
  parallel: number;
  /**
   * Context to allocate, in tokens. Unset: the model's training size, at most
   * DEFAULT_CONTEXT_SIZE. Set: exactly this, past the training size too (an operator's choice
   * for models that stretch; answers past it may degrade, so a warning is reported).
   */
  contextSize?: number;
  /** Draws node-llama-cpp's progress bar on the terminal while the default model downloads. */
  showDownloadProgress: boolean;
  /**
   * After the model failed to load (or to download), uses fail at once with the same plain
   * error for this long before one of them tries again: without network every send would
   * otherwise start a download of its own. Default 60 s.
   */
  retryAfterMs?: number;
  /** Where the provider reports a download starting and the model failing to load (with why). */
  report?: ProviderReport;
}

/** A small multilingual instruct model (Qwen 2.5, 0.5B, 4-bit, ~400 MB). */
export const DEFAULT_MODEL = 'hf:bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M';

/** The context allocated when none is configured (or the model's training size if smaller). */
export const DEFAULT_CONTEXT_SIZE = 4096;

const HOW_TO_CONFIGURE =
  'Set AI_MODEL_PATH to a GGUF file, or OPENAI_BASE_URL / OPENAI_API_KEY for a server.';

interface Loaded {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  name: string;
}

export class LocalProvider implements AiProvider {
  readonly name = 'local';
  private loading: Promise<Loaded> | undefined;
  private loaded: Loaded | undefined;
  /** The last attempt's failure, as clients see it, and when it happened. */
  private failure: { error: ProviderError; at: number } | undefined;
  /** Percent of the default model downloaded, while a download runs. */
  private downloadPercent: number | undefined;
  /** The default model's file is on disk (so a failure after this point was in loading it). */
  private fetched = false;
  private readonly retryAfterMs: number;
  private readonly slots: Semaphore;
  private readonly free: LlamaContextSequence[] = [];

  constructor(private readonly options: LocalProviderOptions) {
    this.slots = createSemaphore(options.parallel);
    this.retryAfterMs = options.retryAfterMs ?? 60_000;
  }

  /**
   * Starts loading now: a configured file, or the default model, downloaded on the first start
   * (so it is there when the first question comes, and /ready can say how far along it is).
   */
  preload(): void {
    void this.load().catch(() => undefined);
  }

  defaultModel(): string {
    return this.options.modelPath ? path.basename(this.options.modelPath, '.gguf') : DEFAULT_MODEL;
  }

  async capabilities() {
    const { context } = await this.load();
    return { contextWindow: context.contextSize, vision: false };
  }

  async countTokens(text: string): Promise<number> {
    const { model } = await this.load();
    return model.tokenize(text).length;
  }

  async *stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<StreamChunk> {
    const loaded = await this.load();
    const queue = new ChunkQueue<StreamChunk>();
    const end = (last: StreamChunk) => {
      queue.push(last);
      queue.close();
    };
    // Waits for a free sequence: at most `parallel` generations evaluate at once.
    const run = this.slots.run(async () => {
      if (signal.aborted) return end({ type: 'done', usage: zeroUsage(), finishReason: 'stopped' });
      const sequence = this.free.pop() ?? loaded.context.getSequence();
      const { LlamaChatSession } = await import('node-llama-cpp');
      const session = new LlamaChatSession({
        contextSequence: sequence,
        autoDisposeSequence: false,
      });
      try {
        const history = request.messages.slice(0, -1);
        const last = request.messages.at(-1);
        session.setChatHistory(history.map(toHistoryItem));
        let completionTokens = 0;
        const result = await session.promptWithMeta(last ? textOf(last.content) : '', {
          maxTokens: request.maxOutputTokens,
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
          signal,
          stopOnAbortSignal: true,
          onTextChunk: (text) => queue.push({ type: 'delta', text }),
          onToken: (tokens) => (completionTokens += tokens.length),
        });
        const promptTokens = Math.max(0, sequence.contextTokens.length - completionTokens);
        end({
          type: 'done',
          usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
          finishReason: signal.aborted
            ? 'stopped'
            : result.stopReason === 'maxTokens'
              ? 'length'
              : 'stop',
        });
      } finally {
        session.dispose({ disposeSequence: false });
        await sequence.clearHistory();
        this.free.push(sequence);
      }
    });
    // Stopped before generation began (while the prompt was evaluated), node-llama-cpp rejects
    // with the AbortError: a stop, not a failure.
    run.catch((error: unknown) =>
      signal.aborted
        ? end({ type: 'done', usage: zeroUsage(), finishReason: 'stopped' })
        : queue.fail(error),
    );
    yield* queue;
  }

  /** For /ready: fails with the plain reason; may start the once-a-minute retry itself. */
  async check(): Promise<void> {
    if (this.loaded) return;
    if (this.downloadPercent !== undefined)
      throw new ProviderError(
        `downloading ${DEFAULT_MODEL} (${this.downloadPercent}%)`,
        'unavailable',
      );
    await this.load();
  }

  async close(): Promise<void> {
    const loaded = await this.loading?.catch(() => undefined);
    if (!loaded) return;
    await loaded.context.dispose();
    await loaded.model.dispose();
    await loaded.llama.dispose();
  }

  /**
   * The loaded model, the attempt under way, or a new attempt: at most one per `retryAfterMs`
   * after a failure, so a send while the model is unavailable costs no download and no disk read.
   */
  private load(): Promise<Loaded> {
    if (this.loading) return this.loading;
    if (this.failure && Date.now() - this.failure.at < this.retryAfterMs) {
      return Promise.reject(this.failure.error);
    }
    this.loading = this.open().then(
      (loaded) => {
        this.failure = undefined;
        return (this.loaded = loaded);
      },
      (error: unknown) => {
        this.loading = undefined; // a later use may try again (the network may be back)
        this.downloadPercent = undefined;
        this.failure = { error: this.unavailable(), at: Date.now() };
        this.reportFailure(error);
        throw this.failure.error;
      },
    );
    return this.loading;
  }

  /** What clients and /ready read: which model, and how to configure one; no path, no cause. */
  private unavailable(): ProviderError {
    const what = this.options.modelPath
      ? 'the file AI_MODEL_PATH names could not be loaded'
      : `${DEFAULT_MODEL} could not be ${this.fetched ? 'loaded' : 'downloaded'}`;
    return new ProviderError(
      `The local AI model is unavailable: ${what}. ${HOW_TO_CONFIGURE}`,
      'unavailable',
    );
  }

  /** What operators read: the file or model, the raw cause, and when the next attempt may come. */
  private reportFailure(error: unknown): void {
    const source = this.options.modelPath ?? DEFAULT_MODEL;
    const cause = error instanceof Error ? error.message : String(error);
    this.options.report?.(
      'warn',
      `The local AI model is unavailable: ${source}: ${cause}. ` +
        `No new attempt for ${this.retryAfterMs / 1000} s. ${HOW_TO_CONFIGURE}`,
    );
  }

  private async open(): Promise<Loaded> {
    const { getLlama, resolveModelFile } = await import('node-llama-cpp');
    const modelPath =
      this.options.modelPath ??
      (await resolveModelFile(DEFAULT_MODEL, {
        directory: this.options.modelsDir,
        cli: this.options.showDownloadProgress,
        onProgress: ({ downloadedSize, totalSize }) => {
          if (this.downloadPercent === undefined)
            this.options.report?.(
              'info',
              `Downloading ${DEFAULT_MODEL} into ${this.options.modelsDir}`,
            );
          this.downloadPercent = totalSize > 0 ? Math.floor((downloadedSize / totalSize) * 100) : 0;
        },
      }));
    this.downloadPercent = undefined;
    this.fetched = true;
    // CPU only, never a source build (that would need a toolchain and the network).
    const llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: this.options.threads,
      logLevel: 'error' as never,
    });
    try {
      const model = await llama.loadModel({ modelPath });
      const contextSize =
        this.options.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, model.trainContextSize);
      if (contextSize > model.trainContextSize)
        this.options.report?.(
          'warn',
          `AI_LOCAL_CONTEXT ${contextSize} is past the model's training context (${model.trainContextSize} tokens): answers that reach beyond it may degrade.`,
        );
      const context = await model.createContext({
        contextSize,
        sequences: this.options.parallel,
        threads: this.options.threads,
      });
      return { llama, model, context, name: path.basename(modelPath) };
    } catch (error) {
      // A failed attempt gives its native backend back (with any model it loaded): another
      // attempt comes every minute for as long as the file stays broken.
      await llama.dispose().catch(() => undefined);
      throw error;
    }
  }
}

/** In node-llama-cpp's terms; the model reads text only (its capabilities say no vision). */
function toHistoryItem(message: ChatMessage) {
  const text = textOf(message.content);
  if (message.role === 'system') return { type: 'system' as const, text };
  if (message.role === 'user') return { type: 'user' as const, text };
  return { type: 'model' as const, response: [text] };
}

const zeroUsage = () => ({ promptTokens: 0, completionTokens: 0, totalTokens: 0 });
