// A GGUF model running in this process through node-llama-cpp: one loaded model shared by every
// generation, a bounded number of context sequences (the rest wait), the model's own chat
// template, and its real tokenizer.
import path from 'node:path';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { createSemaphore, type Semaphore } from '../../utils/semaphore.js';
import { ChunkQueue } from '../chunk-queue.js';
import {
  ProviderError,
  type AiProvider,
  type ChatMessage,
  type GenerationRequest,
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
  /** Largest context to allocate (the model's training size when smaller). */
  maxContextSize: number;
  /** Draws node-llama-cpp's progress bar on the terminal while the default model downloads. */
  showDownloadProgress: boolean;
  /** Where the provider reports a download starting and the model failing to load. */
  report?: (level: 'info' | 'warn', message: string) => void;
}

/** A small multilingual instruct model (Qwen 2.5, 0.5B, 4-bit, ~400 MB). */
export const DEFAULT_MODEL = 'hf:bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M';

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
  private failure: Error | undefined;
  /** Percent of the default model downloaded, while a download runs. */
  private downloadPercent: number | undefined;
  private readonly slots: Semaphore;
  private readonly free: LlamaContextSequence[] = [];

  constructor(private readonly options: LocalProviderOptions) {
    this.slots = createSemaphore(options.parallel);
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
        const result = await session.promptWithMeta(last?.content ?? '', {
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

  async check(): Promise<void> {
    if (this.loaded) return;
    if (this.failure) throw this.failure;
    if (this.downloadPercent !== undefined)
      throw new Error(`downloading ${DEFAULT_MODEL} (${this.downloadPercent}%)`);
    await this.load();
  }

  async close(): Promise<void> {
    const loaded = await this.loading?.catch(() => undefined);
    if (!loaded) return;
    await loaded.context.dispose();
    await loaded.model.dispose();
    await loaded.llama.dispose();
  }

  private load(): Promise<Loaded> {
    this.loading ??= this.open().then(
      (loaded) => (this.loaded = loaded),
      (error: unknown) => {
        this.failure = new ProviderError(
          `The local AI model is unavailable (${error instanceof Error ? error.message : String(error)}). ` +
            'Set AI_MODEL_PATH to a GGUF file, or OPENAI_BASE_URL / OPENAI_API_KEY for a server.',
          'unavailable',
        );
        this.options.report?.('warn', this.failure.message);
        this.loading = undefined; // a later use may try again (the network may be back)
        this.downloadPercent = undefined;
        throw this.failure;
      },
    );
    return this.loading;
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
    // CPU only, never a source build (that would need a toolchain and the network).
    const llama = await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: this.options.threads,
      logLevel: 'error' as never,
    });
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({
      contextSize: Math.min(this.options.maxContextSize, model.trainContextSize),
      sequences: this.options.parallel,
      threads: this.options.threads,
    });
    this.failure = undefined;
    return { llama, model, context, name: path.basename(modelPath) };
  }
}

function toHistoryItem(message: ChatMessage) {
  if (message.role === 'system') return { type: 'system' as const, text: message.content };
  if (message.role === 'user') return { type: 'user' as const, text: message.content };
  return { type: 'model' as const, response: [message.content] };
}

const zeroUsage = () => ({ promptTokens: 0, completionTokens: 0, totalTokens: 0 });
