// The signed-in page: conversations (newest first, unread counts, live), the open conversation
// with its messages, typing and presence, and the socket events that keep them current.
import {
  AI_USER_ID,
  type BranchSwitch,
  type Conversation,
  type ConversationListItem,
  type Message,
  ParleyError,
  type ParleyClient,
  type Realtime,
  type User,
} from './api.js';
import { h } from './dom.js';
import { MessageLog, type VersionStep } from './messages.js';
import { Composer, ConversationHeader, SearchPanel } from './panels.js';

export class ChatPage {
  readonly element: HTMLElement;
  private readonly list = h('ul', { class: 'conversations' });
  private readonly log: MessageLog;
  private readonly typingStatus = h('p', { role: 'status', class: 'typing' });
  /** Said while the socket is away (live updates paused); empty while connected. */
  private readonly connection = h('p', { class: 'connection', 'aria-live': 'polite' });
  private readonly header: ConversationHeader;
  private readonly composer: Composer;
  private readonly main: HTMLElement;
  private readonly realtime: Realtime;
  private conversations: ConversationListItem[] = [];
  private current: Conversation | undefined;
  private readonly typing = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly online = new Set<string>();
  /** Counts presence events; each user's last one is kept, so an older snapshot never wins. */
  private presenceClock = 0;
  private readonly presenceChanged = new Map<string, number>();
  private listTimer: ReturnType<typeof setTimeout> | undefined;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  /** The open conversation was fetched while the socket was not connected (events missed). */
  private fetchedOffline = false;
  /** The read mark readTimer will send: the conversation, and its last message shown. */
  private pendingRead: { conversationId: string; lastId: string | undefined } | undefined;
  /**
   * The last message of each conversation this page marked read: while the list's last message
   * is that one, it has nothing unread, whatever a list fetched before the mark was stored says.
   */
  private readonly readThrough = new Map<string, string>();
  /** The messages being fetched again after a branch switch (one reload at a time). */
  private reloading: Promise<void> | undefined;
  /** Counts opens: only the newest one's answer is shown (the hash may have moved on meanwhile). */
  private opening = 0;
  /** Resumes waiting to be tried again after a failure. */
  private readonly retries = new Set<ReturnType<typeof setTimeout>>();
  /** False after destroy(): what was in flight then ends quietly (no alerts on the sign-in form). */
  private alive = true;
  private readonly report = (error: unknown): void => {
    if (this.alive) this.fail(error);
  };

  constructor(
    private readonly client: ParleyClient,
    private readonly me: User,
    private readonly fail: (error: unknown) => void,
    signOut: () => void,
  ) {
    this.realtime = client.connect();
    this.log = new MessageLog({
      client,
      meId: () => this.me.id,
      participants: () => this.current?.participants ?? [],
      fail,
      switched: (change, step) => this.showSwitch(change, step),
    });
    const search = new SearchPanel(client, fail);
    this.header = new ConversationHeader(client, fail, {
      changed: () => {
        this.refreshHeader();
        this.refreshList();
      },
      left: () => {
        location.hash = '';
        this.refreshList();
      },
      meId: () => this.me.id,
      online: (userId) => this.online.has(userId),
    });
    this.composer = new Composer(client, this.realtime, fail, () => this.current?.id);
    this.main = h(
      'main',
      { class: 'chat', hidden: true },
      this.header.element,
      this.log.element,
      this.log.receipts,
      this.typingStatus,
      this.composer.element,
    );
    this.element = h(
      'div',
      { class: 'shell' },
      h(
        'header',
        { class: 'top' },
        h('h1', {}, 'Parley'),
        search.form,
        this.connection,
        h('span', { class: 'me' }, me.username ?? me.email),
        h('button', { type: 'button', onclick: signOut }, 'Sign out'),
      ),
      h(
        'nav',
        { 'aria-label': 'Conversations' },
        h(
          'button',
          { type: 'button', class: 'new', onclick: () => void this.create() },
          'New conversation',
        ),
        this.list,
      ),
      search.results,
      this.main,
      h('p', { class: 'empty' }, 'Pick a conversation or start a new one.'),
    );
    this.listen();
    window.addEventListener('hashchange', this.onHashChange);
    document.addEventListener('visibilitychange', this.onVisibilityChange);
    this.refreshList();
    void this.route();
  }

  destroy(): void {
    this.alive = false;
    window.removeEventListener('hashchange', this.onHashChange);
    document.removeEventListener('visibilitychange', this.onVisibilityChange);
    clearTimeout(this.listTimer);
    clearTimeout(this.readTimer);
    for (const timer of [...this.typing.values(), ...this.retries]) clearTimeout(timer);
    this.typing.clear();
    this.retries.clear();
    this.realtime.close();
  }

  private readonly onHashChange = (): void => void this.route();
  /** A read mark is sent only while the page is seen: coming back to it sends the one held. */
  private readonly onVisibilityChange = (): void => {
    if (document.visibilityState === 'visible' && this.current) this.markRead();
  };

  /**
   * Shows the conversation the address names. A failure closes it, except a passing one (not a
   * 403/404) while fetching it again after a reconnect: that is only reported.
   */
  private readonly route = async (again = false): Promise<void> => {
    const id = /^#\/c\/([a-z0-9]+)/.exec(location.hash)?.[1];
    if (!id) {
      this.opening += 1;
      this.current = undefined;
      this.markRead();
      this.main.hidden = true;
      this.element.classList.remove('open');
      return;
    }
    const ticket = ++this.opening;
    try {
      await this.open(id, ticket);
    } catch (error) {
      // A conversation left behind for another one meanwhile fails quietly.
      if (!this.alive || this.opening !== ticket) return;
      this.fail(error);
      const gone = error instanceof ParleyError && [403, 404].includes(error.status);
      if (!again || gone) location.hash = '';
    }
  };

  private async open(id: string, ticket: number): Promise<void> {
    const presenceAsked = this.presenceClock;
    const offline = !this.realtime.socket.connected;
    const [conversation, page] = await Promise.all([
      this.client.getConversation(id),
      this.client.listMessages(id, { branch: 'active', limit: 100 }),
    ]);
    // Another conversation was asked for while this one loaded (or the page closed).
    if (ticket !== this.opening || !this.alive) return;
    this.current = conversation;
    // Fetched before the socket was up: what happened between the fetch and the connection was
    // told to nobody here, so the conversation is fetched again once the socket is up.
    this.fetchedOffline = offline;
    this.notePresence(conversation, presenceAsked);
    for (const timer of this.typing.values()) clearTimeout(timer);
    this.typing.clear();
    this.renderTyping();
    this.header.show(conversation);
    this.log.reset(page.messages);
    this.main.hidden = false;
    this.element.classList.add('open');
    this.renderList();
    this.resumeAnswers(page.messages);
    this.markRead();
    if (offline && this.realtime.socket.connected) void this.reopen();
  }

  /**
   * Answers still being written when the page was fetched: their text starts again from nothing
   * and is replayed from the first event (the fetched text is a snapshot at some unknown event;
   * the client module drops live events ahead of the replay, so nothing is lost or doubled).
   */
  private resumeAnswers(messages: Message[]): void {
    for (const message of messages) {
      const generationId = message.metadata?.generationId;
      if (message.status === 'SENDING' && typeof generationId === 'string')
        void this.followAnswer(message.conversationId, message.id, generationId);
    }
  }

  /** A refused resume is tried again after a pause that doubles, three times, then reported. */
  private async followAnswer(
    conversationId: string,
    messageId: string,
    generationId: string,
    attempt = 0,
  ): Promise<void> {
    this.log.restart(messageId);
    try {
      const result = await this.realtime.resume(generationId, -1);
      // It ended so long ago that its events are gone: the stored message is the answer.
      if (result?.finished && result.replayed === 0)
        await this.reloadMessage(conversationId, messageId);
    } catch (error) {
      const waiting = () =>
        this.alive &&
        this.isCurrent(conversationId) &&
        this.log.get(messageId)?.status === 'SENDING';
      // Offline: the connection's return fetches the conversation again and resumes it then.
      if (!waiting() || !this.realtime.socket.connected) return;
      if (attempt >= 3) return this.report(error);
      const timer = setTimeout(
        () => {
          this.retries.delete(timer);
          if (waiting())
            void this.followAnswer(conversationId, messageId, generationId, attempt + 1);
        },
        1_000 * 2 ** attempt,
      );
      this.retries.add(timer);
    }
  }

  private async reloadMessage(conversationId: string, messageId: string): Promise<void> {
    try {
      const page = await this.client.listMessages(conversationId, { branch: 'active', limit: 100 });
      const message = page.messages.find((m) => m.id === messageId);
      if (message && this.isCurrent(conversationId)) this.log.upsert(message);
    } catch (error) {
      this.report(error);
    }
  }

  /**
   * A branch switch (this person's, or anyone's `branch:switched`): the open conversation's
   * active branch fetched again, once however many reports of one switch arrive.
   */
  private async showSwitch(
    change: Pick<BranchSwitch, 'conversationId' | 'messageId' | 'active' | 'superseded'>,
    step?: VersionStep,
  ): Promise<void> {
    while (this.reloading) await this.reloading;
    const { conversationId, messageId } = change;
    if (!this.isCurrent(conversationId)) return;
    if (this.log.changedBy(change)) {
      const run = this.reloadMessages(change, step ? messageId : undefined).finally(() => {
        this.reloading = undefined;
      });
      this.reloading = run;
      await run;
    }
    if (step) this.log.focusVersions(messageId, step);
  }

  private async reloadMessages(
    { conversationId, superseded }: Pick<BranchSwitch, 'conversationId' | 'superseded'>,
    anchorId?: string,
  ): Promise<void> {
    try {
      const page = await this.client.listMessages(conversationId, { branch: 'active', limit: 100 });
      if (!this.isCurrent(conversationId)) return;
      const joined = page.messages.filter((m) => !this.log.get(m.id));
      this.log.replace(page.messages, superseded, anchorId);
      this.resumeAnswers(joined);
    } catch (error) {
      this.report(error);
    }
  }

  /** The list and the conversation the address names, fetched again. */
  private async reopen(): Promise<void> {
    this.refreshList();
    await this.route(true);
  }

  /**
   * Who is online as the server saw it when it answered: the events only tell changes, so the
   * people already connected when the page opens come from here.
   */
  private notePresence(conversation: Conversation, askedAt: number): void {
    for (const { userId, online } of conversation.participants) {
      // An event that came after the request was sent is newer than the answer's snapshot.
      if ((this.presenceChanged.get(userId) ?? 0) > askedAt) continue;
      if (online) this.online.add(userId);
      else this.online.delete(userId);
    }
  }

  /** Title and participants again, the messages as they are. */
  private refreshHeader(): void {
    const id = this.current?.id;
    if (!id) return;
    const presenceAsked = this.presenceClock;
    this.client
      .getConversation(id)
      .then((conversation) => {
        if (this.current?.id !== id) return;
        this.current = conversation;
        this.notePresence(conversation, presenceAsked);
        this.header.show(conversation);
        this.log.renderReceipts();
      })
      .catch(this.report);
  }

  private async create(): Promise<void> {
    try {
      const conversation = await this.client.createConversation({});
      this.refreshList();
      location.hash = `#/c/${conversation.id}`;
    } catch (error) {
      this.fail(error);
    }
  }

  /** The list from the server (unread counts, order), a moment after a burst of events. */
  private refreshList(): void {
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => {
      this.client
        .listConversations({ limit: 100 })
        .then((page) => {
          this.conversations = page.items;
          this.renderList();
        })
        .catch(this.report);
    }, 150);
  }

  private renderList(): void {
    this.list.replaceChildren(
      ...this.conversations.map((c) => {
        const read =
          c.id === this.current?.id ||
          (c.lastMessage !== null && this.readThrough.get(c.id) === c.lastMessage.id);
        const unread = read ? 0 : c.unreadCount;
        return h(
          'li',
          { class: c.id === this.current?.id ? 'current' : '' },
          h(
            'a',
            { href: `#/c/${c.id}`, 'aria-current': c.id === this.current?.id ? 'page' : null },
            c.title,
          ),
          unread
            ? h('span', { class: 'unread', 'aria-label': `${unread} unread` }, String(unread))
            : null,
        );
      }),
    );
  }

  /**
   * Marks the open conversation read a moment later (one mark for a burst of messages). Leaving
   * it before then sends its mark at once: what was shown was seen.
   */
  private markRead(): void {
    const conversationId = this.current?.id;
    const pending = this.pendingRead;
    if (pending && pending.conversationId !== conversationId) this.sendRead(pending);
    clearTimeout(this.readTimer);
    this.pendingRead = conversationId ? { conversationId, lastId: this.log.last?.id } : undefined;
    this.readTimer = setTimeout(() => {
      if (this.pendingRead) this.sendRead(this.pendingRead);
    }, 300);
  }

  private sendRead(mark: { conversationId: string; lastId: string | undefined }): void {
    this.pendingRead = undefined;
    if (document.visibilityState !== 'visible') return;
    const { conversationId, lastId } = mark;
    if (lastId) this.readThrough.set(conversationId, lastId);
    this.renderList();
    this.realtime.call('message:read', { conversationId }).catch(() => {
      // Not stored: the server's count stands again.
      if (lastId && this.readThrough.get(conversationId) === lastId)
        this.readThrough.delete(conversationId);
      this.renderList();
    });
  }

  private isCurrent(conversationId: string): boolean {
    return this.current?.id === conversationId;
  }

  private listen(): void {
    this.listenMessages();
    this.listenReactions();
    this.listenConversations();
    this.listenPresence();
    this.listenAnswers();
    let connectedBefore = false;
    this.realtime.socket.on('disconnect', () => {
      if (this.alive) this.connection.textContent = 'Offline: reconnecting…';
    });
    this.realtime.socket.on('connect', () => {
      this.connection.textContent = '';
      // After a reconnect, or a first connection later than the open conversation's fetch:
      // whatever happened meanwhile (the list, the open conversation).
      if (connectedBefore || this.fetchedOffline) void this.reopen();
      // The list too, always: it was fetched before the socket could tell of changes.
      else this.refreshList();
      connectedBefore = true;
    });
  }

  private listenMessages(): void {
    const socket = this.realtime.socket;
    const onMessage = ({
      conversationId,
      message,
    }: {
      conversationId: string;
      message: Message;
    }) => {
      this.refreshList();
      if (!this.isCurrent(conversationId) || message.superseded) return;
      this.log.upsert(message);
      this.markRead();
    };
    socket.on('message:new', onMessage);
    socket.on('message:updated', onMessage);
    socket.on('message:deleted', ({ conversationId, messageId }) => {
      const message = this.log.get(messageId);
      if (this.isCurrent(conversationId) && message)
        this.log.upsert({
          ...message,
          isDeleted: true,
          content: null,
          reactions: [],
          attachments: [],
        });
    });
    socket.on('branch:switched', (change) => void this.showSwitch(change));
    socket.on('conversation:read', (receipt) => {
      const participant = this.current?.participants.find((p) => p.userId === receipt.userId);
      if (!this.isCurrent(receipt.conversationId) || !participant) return;
      participant.lastReadAt = receipt.lastReadAt;
      this.log.renderReceipts();
    });
  }

  private listenReactions(): void {
    const onReaction = (
      {
        conversationId,
        messageId,
        userId,
        emoji,
      }: { conversationId: string; messageId: string; userId: string; emoji: string },
      added: boolean,
    ) => {
      const message = this.log.get(messageId);
      if (!this.isCurrent(conversationId) || !message) return;
      const reactions = message.reactions.map((r) => ({ ...r, userIds: [...r.userIds] }));
      let summary = reactions.find((r) => r.emoji === emoji);
      if (!summary && added) reactions.push((summary = { emoji, count: 0, userIds: [] }));
      if (!summary || summary.userIds.includes(userId) === added) return;
      summary.userIds = added
        ? [...summary.userIds, userId]
        : summary.userIds.filter((u) => u !== userId);
      summary.count = summary.userIds.length;
      this.log.upsert({ ...message, reactions: reactions.filter((r) => r.count > 0) });
    };
    this.realtime.socket.on('message:reaction:added', (e) => onReaction(e, true));
    this.realtime.socket.on('message:reaction:removed', (e) => onReaction(e, false));
  }

  private listenConversations(): void {
    const socket = this.realtime.socket;
    for (const event of ['conversation:created', 'conversation:deleted'] as const)
      socket.on(event, () => this.refreshList());
    socket.on('conversation:updated', ({ conversationId }) => {
      this.refreshList();
      if (this.isCurrent(conversationId)) this.refreshHeader();
    });
    socket.on('user:joined', ({ conversationId }) => {
      // Someone joined this conversation, or this person was added to one.
      if (this.isCurrent(conversationId)) this.refreshHeader();
      else this.refreshList();
    });
    socket.on('user:left', ({ conversationId, userId }) => {
      if (userId === this.me.id) {
        if (this.isCurrent(conversationId)) location.hash = '';
        this.refreshList();
      } else if (this.isCurrent(conversationId)) this.refreshHeader();
    });
  }

  /** Typing and online status. */
  private listenPresence(): void {
    const socket = this.realtime.socket;
    socket.on('typing:start', ({ conversationId, userId, expiresInMs }) => {
      if (!this.isCurrent(conversationId) || userId === this.me.id) return;
      clearTimeout(this.typing.get(userId));
      this.typing.set(
        userId,
        setTimeout(() => this.stopTyping(userId), expiresInMs ?? 10_000),
      );
      this.renderTyping();
    });
    socket.on('typing:stop', ({ conversationId, userId }) => {
      if (this.isCurrent(conversationId)) this.stopTyping(userId);
    });
    socket.on('user:online', ({ userId }) => {
      this.presenceChanged.set(userId, ++this.presenceClock);
      this.online.add(userId);
      this.header.renderPeople();
    });
    socket.on('user:offline', ({ userId }) => {
      this.presenceChanged.set(userId, ++this.presenceClock);
      this.online.delete(userId);
      this.header.renderPeople();
    });
  }

  /** An answer's text as it streams, and its end (SENT, STOPPED or FAILED). */
  private listenAnswers(): void {
    this.realtime.onAnswer((event) => {
      const { messageId } = event.data;
      if (event.type === 'delta') this.log.appendText(messageId, event.data.delta);
      else if (event.type === 'end')
        this.log.finish(messageId, {
          status: event.data.status,
          finishReason: event.data.finishReason,
          model: event.data.model,
          usage: event.data.usage,
        });
      else if (event.type === 'error')
        this.report(new Error(`The answer failed: ${event.data.error}`));
    });
  }

  private stopTyping(userId: string): void {
    clearTimeout(this.typing.get(userId));
    this.typing.delete(userId);
    this.renderTyping();
  }

  private renderTyping(): void {
    const names = [...this.typing.keys()].map((id) =>
      id === AI_USER_ID
        ? 'Assistant'
        : (this.current?.participants.find((p) => p.userId === id)?.username ?? 'Someone'),
    );
    this.typingStatus.textContent = names.length
      ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…`
      : '';
  }
}
