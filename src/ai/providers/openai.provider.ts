// OpenAI, or any OpenAI-compatible server (Ollama, vLLM, llama.cpp server, LM Studio, DeepSeek,
// Qwen, …), through the official SDK, streaming with usage.
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import {
  estimateTokens,
  ProviderError,
  textOf,
  type AiProvider,
  type ChatMessage,
  type GenerationRequest,
  type ProviderReport,
  type StreamChunk,
} from '../provider.js';

export interface OpenAiProviderOptions {
  apiKey: string | undefined;
  baseURL: string | undefined;
  model: string;
  /** Waiting for the response to start, and for each chunk after it. */
  timeoutMs: number;
  /** Retries before the first token (the SDK retries 429, 5xx and connection errors). */
  maxRetries: number;
  contextWindow: number;
  /** The models take images (AI_VISION); without, images are named in the text instead. */
  vision?: boolean;
  /** Where the upstream's own words about a failure go (the log); clients get a plain message. */
  report?: ProviderReport;
}

export class OpenAiProvider implements AiProvider {
  readonly name = 'openai';
  private readonly client: OpenAI;

  constructor(private readonly options: OpenAiProviderOptions) {
    this.client = new OpenAI({
      // Local OpenAI-compatible servers often want no key; the SDK insists on one.
      apiKey: options.apiKey ?? 'not-needed',
      baseURL: options.baseURL,
      maxRetries: options.maxRetries,
      timeout: options.timeoutMs,
    });
  }

  defaultModel(): string {
    return this.options.model;
  }

  capabilities() {
    return Promise.resolve({
      contextWindow: this.options.contextWindow,
      vision: this.options.vision ?? true,
    });
  }

  countTokens(text: string): Promise<number> {
    return Promise.resolve(estimateTokens(text));
  }

  async *stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<StreamChunk> {
    // One controller for the caller's stop and our idle timeout: either closes the connection.
    const controller = new AbortController();
    const onStop = () => controller.abort();
    signal.addEventListener('abort', onStop, { once: true });
    // Stopped before it began: an abort listener added now would never fire.
    if (signal.aborted) controller.abort();
    let idle: NodeJS.Timeout | undefined;
    let timedOut = false;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.options.timeoutMs);
    };
    let finishReason = 'stop';
    let usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
    try {
      armIdle();
      const stream = await this.client.chat.completions.create(
        {
          model: request.model,
          messages: request.messages.map(toOpenAiMessage),
          stream: true,
          stream_options: { include_usage: true },
          max_tokens: request.maxOutputTokens,
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        },
        { signal: controller.signal },
      );
      for await (const chunk of stream) {
        armIdle();
        const choice = chunk.choices[0];
        const text = choice?.delta?.content;
        if (text) yield { type: 'delta', text };
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) {
          usage = {
            promptTokens: chunk.usage.prompt_tokens,
            completionTokens: chunk.usage.completion_tokens,
            totalTokens: chunk.usage.total_tokens,
          };
        }
      }
      yield { type: 'done', usage, finishReason: signal.aborted ? 'stopped' : finishReason };
    } catch (error) {
      if (signal.aborted) {
        yield { type: 'done', usage, finishReason: 'stopped' };
        return;
      }
      const failure = toProviderError(error, timedOut, this.options.timeoutMs);
      this.options.report?.(
        'warn',
        `The AI provider's request for ${request.model} failed (${failure.kind}): ${upstreamDetail(error)}`,
      );
      throw failure;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', onStop);
      controller.abort(); // closes the upstream connection if it is still open
    }
  }

  async check(): Promise<void> {
    // Configuration only: calling the upstream on every /ready would cost money and rate limit.
    if (!this.options.apiKey && !this.options.baseURL)
      throw new ProviderError('OPENAI_API_KEY is not set', 'unavailable');
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Images go as data URLs in `image_url` parts, the chat-completions way; only users send them. */
function toOpenAiMessage(message: ChatMessage): ChatCompletionMessageParam {
  const { role, content } = message;
  if (typeof content === 'string') return { role, content };
  if (role !== 'user') return { role, content: textOf(content) };
  return {
    role,
    content: content.map((part) =>
      part.type === 'text'
        ? { type: 'text' as const, text: part.text }
        : {
            type: 'image_url' as const,
            image_url: { url: `data:${part.mimeType};base64,${part.data}` },
          },
    ),
  };
}

/**
 * One plain message per kind of failure (SPEC §8): an upstream's error text can quote the
 * request, name its internals or echo our key's prefix, so it goes to the log, never to clients.
 */
function toProviderError(error: unknown, timedOut: boolean, timeoutMs: number): ProviderError {
  if (timedOut || error instanceof OpenAI.APIConnectionTimeoutError) {
    return new ProviderError(
      `The AI provider did not answer within ${timeoutMs / 1000} s`,
      'timeout',
    );
  }
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    if (error.status === 401 || error.status === 403) {
      return new ProviderError('The AI provider refused the API key; check OPENAI_API_KEY', 'auth');
    }
    if (error.status === 429) {
      return new ProviderError(
        'The AI provider is rate limiting us; try again shortly',
        'rate-limit',
      );
    }
    if (error.status >= 500) {
      return new ProviderError('The AI provider failed to answer; try again', 'upstream');
    }
    return new ProviderError(
      "The AI provider rejected the request; check the conversation's model and settings",
      'bad-request',
    );
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new ProviderError(
      'Cannot reach the AI provider; check OPENAI_BASE_URL and the network',
      'unavailable',
    );
  }
  return new ProviderError("The AI provider's answer broke off; try again", 'upstream');
}

/** The upstream's own account of a failure, for the log (the SDK's text starts with the status). */
function upstreamDetail(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 500);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`.slice(0, 500);
}
