// Test data with overrides (Outline's buildUser style).
import { randomBytes } from 'node:crypto';
import type { ApiClient, Envelope } from './support/api-client.js';
import type { z } from 'zod';
import type { Message } from '../src/schemas/message.schemas.js';

let sequence = 0;

export interface UserInput {
  email: string;
  password: string;
  username?: string;
}

export function buildUserInput(overrides: Partial<UserInput> = {}): UserInput {
  sequence += 1;
  const tag = `${sequence}_${randomBytes(3).toString('hex')}`;
  return {
    email: `user${tag}@example.test`,
    password: `correct-horse-${tag}`,
    username: `user_${tag}`,
    ...overrides,
  };
}

export interface AuthData {
  user: { id: string; email: string; username: string | null; role: string } & Record<
    string,
    unknown
  >;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface RegisteredUser extends AuthData {
  input: UserInput;
}

/** Registers through the real API and returns the tokens with the input used. */
export async function registerUser(
  api: ApiClient,
  overrides: Partial<UserInput> = {},
): Promise<RegisteredUser> {
  const input = buildUserInput(overrides);
  const response = await api.post<Envelope<AuthData>>('/api/auth/register', input);
  if (response.status !== 201 || !response.body.data) {
    throw new Error(`register failed: ${response.status} ${response.text}`);
  }
  return { ...response.body.data, input };
}

export interface ConversationData {
  id: string;
  title: string;
  myRole: string;
  participants: Array<{ userId: string; role: string }>;
  [field: string]: unknown;
}

/** A message as the API returns it (pages, events), typed from its schema. */
export type StoredMessage = z.output<typeof Message>;

export interface MessageData {
  id: string;
  conversationId: string;
  userId: string | null;
  content: string | null;
  createdAt: string;
  isDeleted: boolean;
  [field: string]: unknown;
}

/** Creates a conversation through the API as `owner`. */
export async function createConversation(
  api: ApiClient,
  owner: AuthData,
  body: Record<string, unknown> = {},
): Promise<ConversationData> {
  const response = await api.post<Envelope<ConversationData>>('/api/conversations', body, {
    token: owner.accessToken,
  });
  if (response.status !== 201) throw new Error(`create conversation failed: ${response.text}`);
  return response.body.data!;
}

export async function sendMessage(
  api: ApiClient,
  sender: AuthData,
  conversationId: string,
  body: Record<string, unknown> | string = 'hello',
): Promise<MessageData> {
  const payload = typeof body === 'string' ? { content: body } : body;
  const response = await api.post<Envelope<{ message: MessageData }>>(
    `/api/chat/conversations/${conversationId}/messages`,
    payload,
    { token: sender.accessToken },
  );
  if (response.status !== 201) throw new Error(`send failed: ${response.status} ${response.text}`);
  return response.body.data!.message;
}

/** A conversation with an owner, an admin and a member, each registered through the API. */
export async function buildRoom(api: ApiClient) {
  const [owner, admin, member] = await Promise.all([
    registerUser(api),
    registerUser(api),
    registerUser(api),
  ]);
  const conversation = await createConversation(api, owner, {
    title: 'Room',
    participantIds: [member.user.id],
  });
  const added = await api.post(
    `/api/conversations/${conversation.id}/participants`,
    { userId: admin.user.id, role: 'ADMIN' },
    { token: owner.accessToken },
  );
  if (added.status !== 201) throw new Error(`add admin failed: ${added.text}`);
  return { owner, admin, member, conversation };
}
