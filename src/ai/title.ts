// A short title for a conversation after its first exchange (SPEC §7): one small request to the
// same provider, its answer cleaned into a single line.
import type { AiProvider } from './provider.js';

const INSTRUCTION =
  'Reply with a short title (at most 6 words) for this conversation, and nothing else.';

/** The title the model suggests for a question and its answer; empty when it gave none. */
export async function suggestTitle(
  provider: AiProvider,
  model: string,
  question: string,
  answer: string,
): Promise<string> {
  let title = '';
  for await (const chunk of provider.stream(
    {
      model,
      maxOutputTokens: 24,
      temperature: 0.2,
      messages: [
        { role: 'system', content: INSTRUCTION },
        { role: 'user', content: `${question.slice(0, 1000)}\n\n${answer.slice(0, 1000)}` },
      ],
    },
    new AbortController().signal,
  )) {
    if (chunk.type === 'delta') title += chunk.text;
  }
  return title
    .replace(/[\r\n"“”「」*#]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 80);
}
