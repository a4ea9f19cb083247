// The floor under any HTTP upload to disk, for bench/upload.ts: a bare Node HTTP server in a
// process of its own that pipes each request's body, as it comes (multipart envelope and all),
// into a file and answers with the file's path. No parsing, no checks, no database.
import { spawn } from 'node:child_process';
import { freePort, ownChild } from './bench-processes.js';

const SERVER = `
const { createServer } = require('node:http');
const { createWriteStream } = require('node:fs');
const { pipeline } = require('node:stream/promises');
const [port, dir] = process.argv.slice(1);
let n = 0;
createServer(async (req, res) => {
  const file = dir + '/upload-' + n++;
  try {
    await pipeline(req, createWriteStream(file));
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ file }));
  } catch (error) {
    res.writeHead(500).end(String(error));
  }
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
`;

export interface BareUploadServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the server; its files go into `dir`. */
export async function startBareUploadServer(dir: string): Promise<BareUploadServer> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', SERVER, String(port), dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  ownChild(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the bare upload server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
