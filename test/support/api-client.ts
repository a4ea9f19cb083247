// A minimal HTTP client for tests: JSON in and out over real fetch, envelope left intact.
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** The parsed JSON body (the envelope), or the raw text when it is not JSON. */
  body: T;
  text: string;
}

export interface Envelope<T = unknown> {
  success: boolean;
  data?: T;
  error?: string;
  code?: string;
  details?: unknown;
}

export interface RequestOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Sent as-is instead of JSON.stringify(body). */
  raw?: string | Uint8Array;
  /** Sent as multipart/form-data (fetch sets the boundary). */
  form?: FormData;
}

export class ApiClient {
  /** Called with every response, e.g. to check what a whole test file received. */
  onResponse?: (response: ApiResponse<unknown>) => void;

  constructor(readonly baseUrl: string) {}

  async request<T = Envelope>(
    method: string,
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let payload: string | Uint8Array | FormData | undefined = options.form ?? options.raw;
    if (payload === undefined && body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body: payload });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    const result = { status: response.status, headers: response.headers, body: parsed as T, text };
    this.onResponse?.(result);
    return result;
  }

  get = <T = Envelope>(path: string, options?: RequestOptions) =>
    this.request<T>('GET', path, undefined, options);
  post = <T = Envelope>(path: string, body?: unknown, options?: RequestOptions) =>
    this.request<T>('POST', path, body, options);
  patch = <T = Envelope>(path: string, body?: unknown, options?: RequestOptions) =>
    this.request<T>('PATCH', path, body, options);
  delete = <T = Envelope>(path: string, options?: RequestOptions) =>
    this.request<T>('DELETE', path, undefined, options);
}
