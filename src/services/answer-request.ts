// The request for one answer: the conversation's history and its files fitted into the model's
// window with the system prompt and the output reserved, sent to the provider. Shared by the
// in-process path and the workers of the queue.
import { ChunkQueue, readEagerly } from '../ai/chunk-queue.js';
import { fitContext, toChat } from '../ai/context.js';
import type { AiProvider, GenerationRequest, StreamChunk } from '../ai/provider.js';
import type { ConversationSettings, Message } from '../db/schema.js';
import type { AiPolicy } from './ai-policy.js';
import type { AnswerAttachments } from './answer-attachments.js';
import type { Upstream } from './answer-runner.js';

/** What every answer's request is made with. */
export interface AnswerParts {
  provider: AiProvider;
  policy: AiPolicy;
  files: AnswerAttachments;
}

export async function requestAnswer(
  { provider, policy, files }: AnswerParts,
  model: string,
  settings: ConversationSettings,
  history: Message[],
  signal: AbortSignal,
): Promise<Upstream> {
  // Stopped while its history was read (or the conversation deleted): never ask upstream.
  if (signal.aborted) return stoppedBeforeItsTurn();
  const capabilities = await provider.capabilities(model);
  const attached = await files.forBranch(history, capabilities);
  const fitted = await fitContext({
    provider,
    model,
    contextWindow: capabilities.contextWindow,
    systemPrompt: settings.systemPrompt,
    history: toChat(history, attached),
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
