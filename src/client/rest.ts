// The REST half of the client: one typed method per route a front end needs (docs/api.md).
import { unwrap } from './envelope.js';
import { TokenKeeper, type TokenKeeperOptions } from './session.js';
import {
  type AddParticipant,
  type Attachment,
  type AuthTokens,
  type BranchSwitch,
  type Conversation,
  type ConversationPage,
  type CreateConversation,
  type Generation,
  type Message,
  type MessagePage,
  type ReadMark,
  type SearchResults,
  type SendMessage,
  type SendMessageResult,
  type Session,
  type UpdateConversation,
  type User,
  type UserRef,
} from './types.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

const q = (params: Record<string, string | number | boolean | undefined>): string => {
  const pairs = Object.entries(params).filter(
    (entry): entry is [string, string | number | boolean] => entry[1] !== undefined,
  );
  return pairs.length
    ? `?${String(new URLSearchParams(pairs.map(([k, v]): [string, string] => [k, String(v)])))}`
    : '';
};
const id = (value: string) => encodeURIComponent(value);

export class RestClient {
  readonly tokens: TokenKeeper;

  /** `options`: where the session is kept for other tabs, and the lock they share (session.ts). */
  constructor(
    readonly baseUrl = '',
    options: TokenKeeperOptions = {},
  ) {
    this.tokens = new TokenKeeper(baseUrl, options);
  }

  /**
   * A request with the bearer token; a 401 refreshes the session once and tries again (or just
   * tries again when the token was renewed while the request was out: no refresh is needed).
   */
  async fetch(path: string, init: RequestInit = {}, retry = true): Promise<Response> {
    const headers = new Headers(init.headers);
    const token = this.tokens.current?.accessToken;
    if (token) headers.set('authorization', `Bearer ${token}`);
    const response = await fetch(`${this.baseUrl}${path}`, { ...init, headers });
    if (response.status === 401 && retry && token && this.tokens.current) {
      if (this.tokens.current.accessToken !== token) return this.fetch(path, init, false);
      const renewed = await this.tokens.refresh().catch(() => null);
      if (renewed) return this.fetch(path, init, false);
    }
    return response;
  }

  async request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const response = await this.fetch(path, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return unwrap<T>(response);
  }

  // Auth and account
  async register(body: { email: string; password: string; username?: string }): Promise<User> {
    return this.signedIn(await this.request<AuthTokens>('POST', '/api/auth/register', body));
  }
  async login(body: { email: string; password: string }): Promise<User> {
    return this.signedIn(await this.request<AuthTokens>('POST', '/api/auth/login', body));
  }
  async logout(): Promise<void> {
    try {
      if (this.tokens.current) await this.request('POST', '/api/auth/logout');
    } finally {
      this.tokens.clear();
    }
  }
  me = () => this.request<User>('GET', '/api/auth/me');
  async updateMe(body: { username?: string; avatar?: string | null }): Promise<User> {
    const user = await this.request<User>('PATCH', '/api/auth/me', body);
    this.tokens.updateUser(user);
    return user;
  }
  changePassword = (body: { currentPassword: string; newPassword: string }) =>
    this.request<unknown>('POST', '/api/auth/password', body);
  async deleteAccount(password: string): Promise<void> {
    await this.request('DELETE', '/api/auth/me', { password });
    this.tokens.clear();
  }
  sessions = () => this.request<Session[]>('GET', '/api/auth/sessions');
  /**
   * Everything of this account as one JSON document (GET /api/auth/me/export, not enveloped):
   * the streamed response, for the caller to save (`response.body`, or `await response.blob()`).
   */
  async exportAccount(): Promise<Response> {
    const response = await this.fetch('/api/auth/me/export');
    if (!response.ok) await unwrap(response);
    return response;
  }
  lookupUser = (username: string) =>
    this.request<UserRef>('GET', `/api/users/lookup${q({ username })}`);

  // Conversations
  listConversations = (params: { archived?: boolean; limit?: number; cursor?: string } = {}) =>
    this.request<ConversationPage>('GET', `/api/conversations${q(params)}`);
  getConversation = (conversationId: string) =>
    this.request<Conversation>('GET', `/api/conversations/${id(conversationId)}`);
  createConversation = (body: CreateConversation = {}) =>
    this.request<Conversation>('POST', '/api/conversations', body);
  updateConversation = (conversationId: string, body: UpdateConversation) =>
    this.request<Conversation>('PATCH', `/api/conversations/${id(conversationId)}`, body);
  addParticipant = (conversationId: string, body: AddParticipant) =>
    this.request<unknown>('POST', `/api/conversations/${id(conversationId)}/participants`, body);
  removeParticipant = (conversationId: string, userId: string) =>
    this.request<unknown>(
      'DELETE',
      `/api/conversations/${id(conversationId)}/participants/${id(userId)}`,
    );

  // Messages
  listMessages = (
    conversationId: string,
    params: { limit?: number; before?: string; after?: string; branch?: 'all' | 'active' } = {},
  ) =>
    this.request<MessagePage>(
      'GET',
      `/api/chat/conversations/${id(conversationId)}/messages${q(params)}`,
    );
  sendMessage = (conversationId: string, body: SendMessage) =>
    this.request<SendMessageResult>(
      'POST',
      `/api/chat/conversations/${id(conversationId)}/messages`,
      body,
    );
  editMessage = (messageId: string, content: string) =>
    this.request<Message>('PATCH', `/api/chat/messages/${id(messageId)}`, { content });
  editAndResend = (messageId: string, content: string) =>
    this.request<SendMessageResult>('POST', `/api/chat/messages/${id(messageId)}/edit-branch`, {
      content,
    });
  deleteMessage = (messageId: string) =>
    this.request<unknown>('DELETE', `/api/chat/messages/${id(messageId)}`);
  react = (messageId: string, emoji: string) =>
    this.request<unknown>('POST', `/api/chat/messages/${id(messageId)}/reactions`, { emoji });
  unreact = (messageId: string, emoji: string) =>
    this.request<unknown>(
      'DELETE',
      `/api/chat/messages/${id(messageId)}/reactions/${encodeURIComponent(emoji)}`,
    );
  regenerate = (messageId: string) =>
    this.request<{ generation: Generation }>(
      'POST',
      `/api/chat/messages/${id(messageId)}/regenerate`,
    );
  /** Switch between branches: this version becomes the chosen one (409 while an answer on the way streams). */
  activateMessage = (messageId: string) =>
    this.request<BranchSwitch>('POST', `/api/chat/messages/${id(messageId)}/activate`);
  markRead = (conversationId: string, messageId?: string) =>
    this.request<ReadMark>(
      'POST',
      `/api/chat/conversations/${id(conversationId)}/read`,
      messageId ? { messageId } : {},
    );
  search = (query: string, params: { limit?: number; page?: number } = {}) =>
    this.request<SearchResults>('GET', `/api/chat/search${q({ q: query, ...params })}`);
  searchConversation = (conversationId: string, query: string) =>
    this.request<SearchResults>(
      'GET',
      `/api/chat/conversations/${id(conversationId)}/search${q({ q: query })}`,
    );
  stopGeneration = (generationId: string) =>
    this.request<{ generationId: string; stopped: boolean }>(
      'POST',
      `/api/chat/generations/${id(generationId)}/stop`,
    );

  // Attachments
  async upload(file: Blob, filename: string): Promise<Attachment> {
    const form = new FormData();
    form.append('file', file, filename);
    return unwrap<Attachment>(await this.fetch('/api/attachments', { method: 'POST', body: form }));
  }
  /** The bytes of an attachment (its `url` needs the bearer token, so no plain <img src>). */
  async attachmentContent(attachment: Pick<Attachment, 'url'>): Promise<Blob> {
    const response = await this.fetch(attachment.url);
    if (!response.ok) await unwrap(response);
    return response.blob();
  }

  private signedIn(tokens: AuthTokens): User {
    this.tokens.adopt(tokens);
    return tokens.user;
  }
}
