// The page talks to Parley only through the public client module (what `parley/client` exports).
export * from '../src/client/index.js';
