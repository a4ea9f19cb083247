// A stand-in for Hugging Face (unreachable from tests) serving what node-llama-cpp asks for when
// it resolves an `hf:user/repo:QUANT` URI: the manifest naming the GGUF file, then the file,
// sent slowly so a test can watch the download in progress. Point HF_ENDPOINT at `url`.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeHuggingFace {
  url: string;
  /** Requests for the file itself. */
  downloads: number;
  close(): Promise<void>;
}

export async function startFakeHuggingFace(options: {
  /** `user/repo`, as in the hf: URI. */
  repo: string;
  quant: string;
  fileName: string;
  /** The bytes to serve as the model. */
  modelPath: string;
  /** How long sending the file takes. */
  sendMs: number;
}): Promise<FakeHuggingFace> {
  const bytes = await readFile(options.modelPath);
  const fake = { downloads: 0 };
  const manifestPath = `/v2/${options.repo}/manifests/${options.quant}`;
  const filePath = `/${options.repo}/resolve/main/${options.fileName}`;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === manifestPath) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ggufFile: { rfilename: options.fileName, size: bytes.length } }));
      return;
    }
    if (path !== filePath) {
      res.writeHead(404).end();
      return;
    }
    fake.downloads++;
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(bytes.length),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const pieces = 20;
    const size = Math.ceil(bytes.length / pieces);
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(bytes.subarray(sent, sent + size));
      sent += size;
      if (sent >= bytes.length) {
        clearInterval(timer);
        res.end();
      }
    }, options.sendMs / pieces);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(fake, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}
