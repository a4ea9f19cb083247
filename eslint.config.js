// Lint rules, including STYLE.md's "who may import whom" as import restrictions per layer, so
// the layering holds by itself.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Forbidden import patterns for a layer, with the reason shown in the lint message. */
const forbid = (message, ...group) => ({ group, message, allowTypeImports: false });
const forbidValues = (message, ...group) => ({ group, message, allowTypeImports: true });

const drizzleOnlyInData = forbid(
  'Only src/db and src/repositories build SQL (STYLE.md).',
  'drizzle-orm',
  'drizzle-orm/*',
  'pg',
  '@electric-sql/pglite',
);
const noEntryPoints = forbid(
  'Nothing imports routes or controllers; they are entry points wired in app.ts.',
  '**/routes/*',
  '**/controllers/*',
);
const noHttp = forbid(
  'Services know nothing of HTTP or sockets.',
  'express',
  'socket.io',
  '**/middleware/*',
);
// Business and infrastructure code never reaches up into the entry points or the socket layer:
// services publish events, the gateway listens (STYLE.md).
const noEntryLayer = forbid(
  'Services, events, infra and ai do not import the realtime gateway, the app, the container or the server.',
  '**/realtime/*',
  '**/app',
  '**/app.js',
  '**/container',
  '**/container.js',
  '**/server',
  '**/server.js',
);
const ourCode = forbid(
  'config, utils and errors import nothing of ours (STYLE.md).',
  '../*',
  '../**',
);

const layers = [
  { files: ['src/config/**', 'src/utils/**'], patterns: [ourCode] },
  {
    files: ['src/errors.ts'],
    patterns: [forbid('errors.ts imports nothing of ours.', './*', './**')],
  },
  {
    files: ['src/db/**'],
    patterns: [
      forbid(
        'The database layer sits at the bottom.',
        '**/repositories/*',
        '**/services/*',
        '**/infra/*',
        '**/events/*',
        '**/middleware/*',
      ),
      noEntryPoints,
    ],
  },
  {
    files: ['src/repositories/**'],
    patterns: [
      forbid(
        'Repositories only talk to the database (STYLE.md).',
        '**/services/*',
        '**/infra/*',
        '**/events/*',
        '**/middleware/*',
      ),
      noEntryPoints,
    ],
  },
  {
    files: ['src/services/**'],
    patterns: [
      drizzleOnlyInData,
      noHttp,
      noEntryPoints,
      noEntryLayer,
      forbidValues(
        'Services reach the database through repositories; row types are fine.',
        '**/db/*',
      ),
    ],
  },
  {
    files: ['src/infra/**', 'src/events/**'],
    patterns: [
      drizzleOnlyInData,
      noEntryPoints,
      noEntryLayer,
      forbid(
        'Infrastructure does not depend on business code.',
        '**/services/*',
        '**/repositories/*',
        '**/middleware/*',
      ),
    ],
  },
  {
    files: ['src/middleware/**'],
    patterns: [
      drizzleOnlyInData,
      noEntryPoints,
      forbid('Middleware calls services, never repositories.', '**/repositories/*'),
      forbidValues('Middleware does not touch the database.', '**/db/*'),
    ],
  },
  {
    files: ['src/controllers/**'],
    patterns: [
      drizzleOnlyInData,
      forbid('Controllers call services (STYLE.md).', '**/repositories/*', '**/routes/*'),
      forbidValues('Controllers do not touch the database.', '**/db/*'),
    ],
  },
  {
    files: ['src/routes/**'],
    patterns: [
      drizzleOnlyInData,
      forbid(
        'Routes chain middleware, schemas and controllers (STYLE.md).',
        '**/services/*',
        '**/repositories/*',
        '**/db/*',
      ),
    ],
  },
  { files: ['src/schemas/**'], patterns: [drizzleOnlyInData, noEntryPoints] },
  {
    files: ['src/realtime/**'],
    patterns: [
      drizzleOnlyInData,
      noEntryPoints,
      forbid(
        'Socket handlers are entry points: they call services (STYLE.md).',
        '**/repositories/*',
        '**/db/*',
      ),
    ],
  },
  {
    // Providers and the generation runner: text in, text out. Rows, SQL, HTTP and sockets stay
    // in the services and entry points that call them, so another provider is one file.
    files: ['src/ai/**'],
    patterns: [
      drizzleOnlyInData,
      noHttp,
      noEntryPoints,
      noEntryLayer,
      forbid(
        'src/ai knows nothing of the database or the services that use it.',
        '**/repositories/*',
        '**/services/*',
        '**/realtime/*',
        '**/infra/*',
      ),
      forbidValues('src/ai does not touch the database; row types are fine.', '**/db/*'),
    ],
  },
  {
    // Where files' bytes live: bytes in, bytes out. Who may read them is the services' business.
    files: ['src/storage/**'],
    patterns: [
      drizzleOnlyInData,
      noHttp,
      noEntryPoints,
      noEntryLayer,
      forbid(
        'src/storage knows nothing of the database, the services or the AI.',
        '**/repositories/*',
        '**/services/*',
        '**/db/*',
        '**/ai/*',
        '**/infra/*',
      ),
    ],
  },
  {
    // Queues carry jobs; what a job does is the service's (passed in as a function).
    files: ['src/queue/**'],
    patterns: [
      drizzleOnlyInData,
      noHttp,
      noEntryPoints,
      noEntryLayer,
      forbid('Queues do not call services or repositories.', '**/repositories/*', '**/services/*'),
    ],
  },
  {
    // The client module (`parley/client`) runs in browsers and in other people's builds: at run
    // time it has socket.io-client, its own modules and the event map's constants (AI_USER_ID);
    // zod and the server's schemas come in as types only, erased from what ships. Two patterns,
    // not one with exceptions: a type import that any allowTypeImports pattern matches skips
    // every other pattern.
    files: ['src/client/**'],
    patterns: [
      {
        regex: String.raw`^(zod|\.\./schemas/[^/]+)$`,
        message: 'src/client takes zod and the server schemas as `import type` only.',
        allowTypeImports: true,
      },
      {
        regex: String.raw`^(?!socket\.io-client$|zod$|\./|\.\./realtime/events\.js$|\.\./schemas/)`,
        message:
          'src/client imports only socket.io-client, its own modules, ../realtime/events.js, and types from zod and ../schemas.',
        allowTypeImports: false,
      },
    ],
  },
  {
    // The page talks to Parley only through the client module (web/api.ts re-exports it).
    files: ['web/**'],
    patterns: [
      {
        regex: String.raw`^(?!\./|\.\./src/client/)`,
        message: 'web/ imports only its own modules and ../src/client (through web/api.ts).',
        allowTypeImports: false,
      },
    ],
  },
  {
    files: ['src/openapi/**'],
    patterns: [
      drizzleOnlyInData,
      noEntryPoints,
      forbid(
        'The OpenAPI builder reads routes and schemas only.',
        '**/services/*',
        '**/repositories/*',
        '**/db/*',
      ),
    ],
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/',
      '.cluster-dist/',
      'node_modules/',
      'data/',
      'reports/',
      'src/db/migrations/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // Express 5 handles async handlers' rejections itself (STYLE.md: no wrappers).
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'CallExpression[callee.object.name="console"]', message: 'Use the logger.' },
      ],
    },
  },
  ...layers.map(({ files, patterns }) => ({
    files,
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  })),
  {
    files: ['test/**', 'bench/**', 'scripts/**', '*.config.*'],
    rules: {
      'no-restricted-syntax': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  // The web client runs in browsers.
  { files: ['web/**'], languageOptions: { globals: globals.browser } },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
