// Issue 8, acceptance 12: a model that cannot be had is tried again at most once per interval.
// The default model is resolved against a Hugging Face stand-in that has nothing (404) and counts
// what it is asked; a configured file that is missing comes back once it is there.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/ai/provider.js';
import { LocalProvider, type LocalProviderOptions } from '../../src/ai/providers/local.provider.js';

const TEST_MODEL = path.resolve(import.meta.dirname, '../../../shared/models/stories260K.gguf');

let hf: Server;
let hfRequests: string[] = [];
let dir: string;
const previousEndpoint = process.env.HF_ENDPOINT;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'parley-retry-'));
  hf = createServer((req, res) => {
    hfRequests.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => hf.listen(0, '127.0.0.1', resolve));
  // node-llama-cpp reads it at each resolution; this file runs in a process of its own.
  process.env.HF_ENDPOINT = `http://127.0.0.1:${(hf.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  if (previousEndpoint === undefined) delete process.env.HF_ENDPOINT;
  else process.env.HF_ENDPOINT = previousEndpoint;
  hf.closeAllConnections();
  await new Promise((resolve) => hf.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function provider(options: Partial<LocalProviderOptions>) {
  const reports: Array<{ level: string; message: string }> = [];
  const local = new LocalProvider({
    modelPath: undefined,
    modelsDir: path.join(dir, 'models'),
    threads: 1,
    parallel: 1,
    contextSize: 256,
    showDownloadProgress: false,
    report: (level, message) => reports.push({ level, message }),
    ...options,
  });
  return { local, warnings: () => reports.filter((r) => r.level === 'warn') };
}

/** Every way a send or /ready uses the model: window, tokenizer, an answer, the check. */
function everyUse(local: LocalProvider): Array<Promise<unknown>> {
  const answer = local.stream(
    { messages: [{ role: 'user', content: 'hi' }], model: 'm', maxOutputTokens: 8 },
    new AbortController().signal,
  );
  return [
    local.capabilities(),
    local.countTokens('hello'),
    local.check(),
    answer[Symbol.asyncIterator]().next(),
  ];
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the local provider after a failed load', () => {
  it('fails fast with the same plain error until the interval has passed, then tries once more', async () => {
    hfRequests = [];
    const { local, warnings } = provider({ retryAfterMs: 1_500 });

    const first = await local.check().catch((error: unknown) => error);
    expect(first).toBeInstanceOf(ProviderError);
    expect(first).toMatchObject({ kind: 'unavailable', expose: true });
    const message = (first as ProviderError).message;
    expect(message).toMatch(
      /^The local AI model is unavailable: hf:.*Qwen2\.5.* could not be downloaded\./,
    );
    expect(message).toMatch(/Set AI_MODEL_PATH to a GGUF file/);
    expect(message).not.toMatch(/127\.0\.0\.1|Cannot get|manifest|\/tmp\//);
    expect(hfRequests).toHaveLength(1); // one manifest request is one attempt
    // The operator gets the cause, once.
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]!.message).toMatch(/Cannot get quantization|manifest/);

    // Within the interval, 100 uses of every kind: refused at once, nothing reaches the network.
    const started = performance.now();
    const uses = Array.from({ length: 25 }, () => everyUse(local)).flat();
    const settled = await Promise.allSettled(uses);
    expect(performance.now() - started).toBeLessThan(250);
    for (const result of settled) {
      expect(result).toMatchObject({ status: 'rejected', reason: first });
    }
    expect(hfRequests).toHaveLength(1);
    expect(warnings()).toHaveLength(1);

    // After it, the next use tries again, once however many ask at the same moment.
    await wait(1_600);
    await Promise.allSettled([local.check(), ...everyUse(local), ...everyUse(local)]);
    expect(hfRequests).toHaveLength(2);
    expect(warnings()).toHaveLength(2);
    await Promise.allSettled(everyUse(local));
    expect(hfRequests).toHaveLength(2);
    await local.close();
  });

  it('waits 60 s by default', async () => {
    hfRequests = [];
    const { local, warnings } = provider({});
    await local.check().catch(() => undefined);
    await Promise.allSettled(everyUse(local));
    expect(hfRequests).toHaveLength(1);
    expect(warnings()[0]!.message).toContain('No new attempt for 60 s');
    await local.close();
  });

  it.skipIf(!existsSync(TEST_MODEL))(
    `loads a configured file that was missing once it is there, at the next attempt${existsSync(TEST_MODEL) ? '' : ' (SKIPPED: ../shared/models/stories260K.gguf not found)'}`,
    async () => {
      const modelPath = path.join(dir, 'later.gguf');
      const { local, warnings } = provider({ modelPath, retryAfterMs: 1_000 });
      const first = await local.check().catch((error: unknown) => error);
      expect((first as ProviderError).message).toBe(
        'The local AI model is unavailable: the file AI_MODEL_PATH names could not be loaded. ' +
          'Set AI_MODEL_PATH to a GGUF file, or OPENAI_BASE_URL / OPENAI_API_KEY for a server.',
      );
      // The log names the file and the cause.
      expect(warnings()[0]!.message).toContain(modelPath);
      expect(warnings()[0]!.message).toContain('ENOENT');

      await copyFile(TEST_MODEL, modelPath);
      await expect(local.check()).rejects.toBe(first); // not looked at again yet
      await wait(1_100);
      await expect(local.check()).resolves.toBeUndefined();
      expect(await local.countTokens('Once upon a time')).toBeGreaterThan(0);
      expect(warnings()).toHaveLength(1);
      await local.close();
    },
    30_000,
  );
});
