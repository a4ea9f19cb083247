// The request for one answer: the conversation's history fitted into the model's window with the
// system prompt and the output reserved, sent to the provider. Shared by the in-process path and
// the workers of the queue.
import { ChunkQueue, readEagerly } from '../ai/chunk-queue.js';
import { fitContext, toChat } from '../ai/context.js';
import type { AiProvider, GenerationRequest, StreamChunk } from '../ai/provider.js';
import type { ConversationSettings, Message } from '../db/schema.js';
import type { AiPolicy } from './ai-policy.js';
import type { Upstream } from './answer-runner.js';

export async function requestAnswer(
  provider: AiProvider,
  policy: AiPolicy,
  model: string,
  settings: ConversationSettings,
  history: Message[],
  signal: AbortSignal,
): Promise<Upstream> {
  // Stopped while its history was read (or the conversation deleted): never ask upstream.
  if (signal.aborted) return stoppedBeforeItsTurn();
  const { contextWindow } = await provider.capabilities(model);
  const fitted = await fitContext({
    provider,
    model,
    contextWindow,
    systemPrompt: settings.systemPrompt,
    history: toChat(history),
    maxOutputTokens: policy.maxOutputTokensFor(settings),
  });
  const request: GenerationRequest = {
    messages: fitted.messages,
    model,
    temperature: settings.temperature,
    maxOutputTokens: fitted.maxOutputTokens,
  };
  return {
    fitted,
    question: history.at(-1)?.content,
    chunks: signal.aborted
      ? stoppedBeforeItsTurn().chunks
      : readEagerly(provider.stream(request, signal)),
  };
}

/** An answer stopped before its turn came: it ends at once, stopped, with no text. */
export function stoppedBeforeItsTurn(): Upstream {
  return {
    fitted: { messages: [], includedIds: [], dropped: 0, maxOutputTokens: 0 },
    question: undefined,
    chunks: ChunkQueue.of<StreamChunk>({
      type: 'done',
      usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      finishReason: 'stopped',
    }),
  };
}
