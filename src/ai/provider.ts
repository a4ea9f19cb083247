// The one interface every AI provider implements (SPEC §7): stream text deltas for a chat,
// then a final usage and finish reason. Another provider is one more file beside these.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface GenerationRequest {
  messages: ChatMessage[];
  model: string;
  temperature?: number | undefined;
  maxOutputTokens: number;
}

export type StreamChunk =
  { type: 'delta'; text: string } | { type: 'done'; usage: Usage; finishReason: string };

export interface ProviderCapabilities {
  /** Tokens the model can attend to: prompt and answer together. */
  contextWindow: number;
  vision: boolean;
}

/**
 * A failure the user should read: `message` says what happened and what to do, in plain words,
 * and `kind` is the code clients get. Neither carries a file path or an upstream's raw error
 * text (SPEC §8): the provider hands those to its `report` callback, which goes to the log.
 */
export class ProviderError extends Error {
  /** The message is fit for clients (the http-errors convention /ready also reads). */
  readonly expose = true;

  constructor(
    message: string,
    readonly kind: 'auth' | 'rate-limit' | 'upstream' | 'timeout' | 'unavailable' | 'bad-request',
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/** Where a provider tells operators what clients are not told (the container logs it). */
export type ProviderReport = (level: 'info' | 'warn', message: string) => void;

export interface AiProvider {
  readonly name: 'openai' | 'local';
  defaultModel(): string;
  capabilities(model: string): Promise<ProviderCapabilities>;
  /** Tokens a text takes: the model's own tokenizer where the provider has one, else an estimate. */
  countTokens(text: string, model: string): Promise<number>;
  /**
   * Streams an answer. Aborting `signal` stops the upstream work (closes the HTTP stream, or
   * stops evaluation) and ends the stream with finishReason "stopped". Throws ProviderError.
   */
  stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<StreamChunk>;
  /** Throws when the provider cannot serve (for /ready). */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** A safe over-estimate for tokenizers we do not have: about three bytes a token. */
export const estimateTokens = (text: string) => Math.ceil(Buffer.byteLength(text, 'utf8') / 3);
