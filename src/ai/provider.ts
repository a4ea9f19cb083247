// The one interface every AI provider implements (SPEC §7): stream text deltas for a chat,
// then a final usage and finish reason. Another provider is one more file beside these.

/** An image sent to a vision model as it is, next to the message's text. */
export interface ImagePart {
  type: 'image';
  mimeType: string;
  /** The file's bytes, base64. */
  data: string;
  /** The name it was uploaded under (shown to the model beside it). */
  name: string;
  width?: number | undefined;
  height?: number | undefined;
}

export type ContentPart = { type: 'text'; text: string } | ImagePart;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  /** Plain text, or text and images (only for a provider whose model has `vision`). */
  content: string | ContentPart[];
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
  /** Takes images as image parts; without it the context names them in text instead. */
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

/**
 * A message's text, for a provider that only reads text. The context never gives such a provider
 * images (it names them, see answer-attachments.ts), so naming one here is only a fallback.
 */
export const textOf = (content: ChatMessage['content']): string =>
  typeof content === 'string'
    ? content
    : content
        .map((part) => (part.type === 'text' ? part.text : `[image: ${part.name}]`))
        .join('\n');
