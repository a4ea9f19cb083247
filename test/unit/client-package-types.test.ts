// `parley/client` as another project sees it: package.json's exports point its types at the
// declarations `npm run build` emits (scripts/tsconfig.client-types.json), and a strict consumer
// type-checks against them under Node16 and bundler resolution, with no @types/node and
// skipLibCheck off, so our .d.ts files themselves are checked under the consumer's settings.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
let dir: string;

const consumer = `
import { AI_USER_ID, ParleyClient, ParleyError, type BranchSwitch, type Message } from 'parley/client';
import type { ServerToClientEvents } from 'parley/realtime/events';

export async function demo(client: ParleyClient): Promise<string> {
  const conversation = await client.createConversation({ title: 'Trip plans' });
  const { message } = await client.sendMessage(conversation.id, { content: 'Hi!' });
  const kept: Message = message;
  const onSwitch: ServerToClientEvents['branch:switched'] = (payload) => void payload.by;
  const switched: BranchSwitch = { conversationId: '', messageId: '', active: [], superseded: [] };
  // Real types, not any: a wrong field is an error.
  // @ts-expect-error no such field
  await client.createConversation({ nope: true });
  void onSwitch;
  void switched;
  return kept.id + AI_USER_ID;
}

export const codeOf = (error: unknown): string =>
  error instanceof ParleyError ? error.code : 'unknown';
`;

const tsconfig = (resolution: 'node16' | 'bundler') => ({
  compilerOptions: {
    strict: true,
    noEmit: true,
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    module: resolution === 'node16' ? 'node16' : 'esnext',
    moduleResolution: resolution,
    skipLibCheck: false,
    types: [],
  },
  files: ['index.ts'],
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'parley-consumer-'));
  const pkg = path.join(dir, 'node_modules', 'parley');
  await mkdir(pkg, { recursive: true });
  await writeFile(path.join(pkg, 'package.json'), await readFile(path.join(root, 'package.json')));
  const project = path.join(root, 'scripts', 'tsconfig.client-types.json');
  await run(process.execPath, [tsc, '-p', project, '--outDir', path.join(pkg, 'dist', 'types')]);
  // What installing parley brings along for the declarations to name.
  for (const dep of ['zod', 'socket.io-client'])
    await symlink(path.join(root, 'node_modules', dep), path.join(dir, 'node_modules', dep));
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(path.join(dir, 'index.ts'), consumer);
}, 30_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

it.each(['node16', 'bundler'] as const)(
  'a strict consumer (moduleResolution %s) type-checks against the emitted declarations',
  async (resolution) => {
    const config = path.join(dir, `tsconfig.${resolution}.json`);
    await writeFile(config, JSON.stringify(tsconfig(resolution)));
    const result = await run(process.execPath, [tsc, '-p', config]).catch(
      (error: Error & { stdout?: string }) => ({ stdout: error.stdout || error.message }),
    );
    expect(result.stdout).toBe('');
  },
  20_000,
);
