// The `Messages` log: one article per message, answers growing as their deltas arrive, and each
// message's own actions (Stop, Regenerate, edit, delete, reactions, edit-and-resend, versions).
import type { BranchSwitch, Message, ParleyClient, Participant } from './api.js';
import { h, time } from './dom.js';
import { renderMarkdown } from './markdown.js';

const QUICK_REACTIONS = ['👍', '❤️', '😂'];

export type VersionStep = 'Previous version' | 'Next version';

export interface LogContext {
  client: ParleyClient;
  meId: () => string;
  participants: () => Participant[];
  fail: (error: unknown) => void;
  /** This person chose another version (with `step`): show the branch anew. */
  switched: (change: BranchSwitch, step: VersionStep) => Promise<void>;
}

export class MessageLog {
  readonly element = h('div', {
    role: 'log',
    'aria-label': 'Messages',
    'aria-live': 'polite',
    class: 'log',
  });
  private readonly messages = new Map<string, Message>();
  private readonly articles = new Map<string, HTMLElement>();
  /** Edit forms open, by message id: kept, typing and focus included, through live updates. */
  private readonly editing = new Map<string, HTMLFormElement>();
  private readonly blobUrls: string[] = [];
  readonly receipts = h('p', { class: 'receipts' });

  constructor(private readonly ctx: LogContext) {}

  reset(messages: Message[]): void {
    this.messages.clear();
    this.articles.clear();
    this.editing.clear();
    for (const url of this.blobUrls.splice(0)) URL.revokeObjectURL(url);
    this.element.replaceChildren();
    for (const message of messages) this.upsert(message);
  }

  /**
   * The active branch again after a switch: messages that came live while it was fetched stay,
   * streaming answers keep the text their deltas brought, and the scroll and focus stay put.
   */
  replace(messages: Message[], left: string[], anchorId?: string): void {
    const bottom = this.atBottom();
    const top = this.element.scrollTop;
    const focus = this.focused();
    const newest = messages.at(-1)?.createdAt ?? '';
    const later = [...this.messages.values()].filter(
      (m) => m.createdAt > newest && !left.includes(m.id),
    );
    this.reset(
      [...messages, ...later].map((m) => {
        const shown = this.messages.get(m.id);
        return shown?.status === 'SENDING' && m.status === 'SENDING'
          ? { ...m, content: shown.content }
          : m;
      }),
    );
    const anchor = anchorId ? this.articles.get(anchorId) : undefined;
    if (anchor) anchor.scrollIntoView({ block: 'nearest' });
    else this.element.scrollTop = bottom ? this.element.scrollHeight : top;
    if (focus) this.refocus(this.articles.get(focus.id), focus.key);
  }

  /** Focus on the control of `article` that `key` names, or its first enabled button. */
  private refocus(article: HTMLElement | undefined, key: string): void {
    const buttons = [...(article?.querySelectorAll('button') ?? [])];
    (buttons.find((b) => keyOf(b) === key) ?? buttons.find((b) => !b.disabled))?.focus();
  }

  /** Whether a branch switch changes what the log shows. */
  changedBy(change: Pick<BranchSwitch, 'active' | 'superseded'>): boolean {
    return (
      change.superseded.some((id) => this.messages.has(id)) ||
      change.active.some((id) => !this.messages.has(id))
    );
  }

  /** Focus back on a message's version arrows (the one pressed, or the other at an end). */
  focusVersions(messageId: string, step: VersionStep): void {
    const buttons = [
      ...(this.articles.get(messageId)?.querySelectorAll<HTMLButtonElement>('.versions button') ??
        []),
    ];
    if (step === 'Next version') buttons.reverse();
    // Only where the pressed arrow's focus was lost with its article, never away from elsewhere.
    if (document.activeElement && document.activeElement !== document.body) return;
    buttons.find((b) => !b.disabled)?.focus();
  }

  private focused(): { id: string; key: string } | undefined {
    const active = document.activeElement;
    const id = active?.closest('article')?.getAttribute('data-id');
    if (!active || !id || !this.element.contains(active)) return undefined;
    return { id, key: keyOf(active) };
  }

  get(id: string): Message | undefined {
    return this.messages.get(id);
  }

  get last(): Message | undefined {
    return [...this.messages.values()].at(-1);
  }

  /** Adds or replaces a message; a newer version of one (regenerate, edit-and-resend) replaces it. */
  upsert(message: Message): void {
    if (message.alternativeOf && !this.messages.has(message.id)) this.dropVersions(message);
    const known = this.messages.get(message.id);
    this.messages.set(message.id, message);
    const article = this.render(message);
    const old = this.articles.get(message.id);
    const active = document.activeElement;
    const hadFocus = old && active instanceof HTMLElement && old.contains(active);
    const focusKey = hadFocus ? keyOf(active) : undefined;
    const caret =
      active instanceof HTMLTextAreaElement
        ? ([active.selectionStart, active.selectionEnd] as const)
        : undefined;
    // An edit in progress survives the update (someone's reaction, a read mark): the same form,
    // text and caret; a deletion ends it.
    const form = this.editing.get(message.id);
    if (form && message.isDeleted) this.editing.delete(message.id);
    else if (form) article.querySelector('.body')?.replaceChildren(form);
    this.articles.set(message.id, article);
    if (old) old.replaceWith(article);
    else {
      const stick = this.atBottom();
      this.element.append(article);
      // A reader scrolled up stays where they are; one's own new message is shown.
      if (stick || (!known && message.userId === this.ctx.meId()))
        article.scrollIntoView({ block: 'end' });
    }
    if (hadFocus && form?.contains(active)) {
      active.focus();
      if (caret && active instanceof HTMLTextAreaElement)
        active.setSelectionRange(caret[0], caret[1]);
    } else if (focusKey !== undefined) this.refocus(article, focusKey);
    this.renderReceipts();
  }

  remove(id: string): void {
    this.messages.delete(id);
    this.articles.get(id)?.remove();
    this.articles.delete(id);
  }

  /** New text of a streaming answer. */
  appendText(messageId: string, delta: string): void {
    const message = this.messages.get(messageId);
    if (!message) return;
    message.content = (message.content ?? '') + delta;
    const body = this.articles.get(messageId)?.querySelector('.body');
    const stick = this.atBottom();
    body?.replaceChildren(renderMarkdown(message.content));
    if (stick) this.element.scrollTop = this.element.scrollHeight;
  }

  /** Starts a streaming answer again from nothing (its events are replayed from the first). */
  restart(messageId: string): void {
    const message = this.messages.get(messageId);
    if (message) this.upsert({ ...message, content: '' });
  }

  finish(messageId: string, patch: Partial<Message>): void {
    const message = this.messages.get(messageId);
    if (message) this.upsert({ ...message, ...patch });
  }

  renderReceipts(): void {
    const last = this.last;
    const me = this.ctx.meId();
    const seen = last
      ? this.ctx
          .participants()
          .filter(
            (p) => p.userId !== me && p.userId !== last.userId && p.lastReadAt >= last.createdAt,
          )
          .map((p) => p.username ?? 'someone')
      : [];
    this.receipts.textContent = seen.length ? `Seen by ${seen.join(', ')}` : '';
  }

  private atBottom(): boolean {
    const el = this.element;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  private dropVersions(message: Message): void {
    const root = message.alternativeOf;
    const gone = new Set<string>();
    for (const m of this.messages.values())
      if (m.id === root || m.alternativeOf === root) gone.add(m.id);
    // Whatever answered a replaced version goes with it.
    for (const m of this.messages.values()) if (m.parentId && gone.has(m.parentId)) gone.add(m.id);
    for (const id of gone) this.remove(id);
  }

  private author(message: Message): string {
    if (message.role === 'ASSISTANT') return 'Assistant';
    return message.author?.username ?? (message.userId ? 'someone' : 'deleted user');
  }

  private render(message: Message): HTMLElement {
    const author = this.author(message);
    const mine = message.userId === this.ctx.meId();
    const streaming = message.status === 'SENDING' && message.role === 'ASSISTANT';
    const body = h('div', { class: 'body' });
    if (message.isDeleted) body.append(h('em', {}, 'This message was deleted'));
    else body.append(renderMarkdown(message.content ?? ''));
    return h(
      'article',
      {
        'aria-label': `${author}, ${time(message.createdAt)}`,
        'data-id': message.id,
        'data-status': message.status,
        class: `message ${mine ? 'mine' : ''} ${message.role.toLowerCase()}`,
      },
      h(
        'header',
        {},
        h('strong', {}, author),
        ' ',
        h('time', { datetime: message.createdAt }, time(message.createdAt)),
        message.isEdited && !message.isDeleted ? ' (edited)' : '',
        message.status === 'FAILED' ? ' (failed)' : '',
        message.finishReason === 'stopped' ? ' (stopped)' : '',
      ),
      body,
      message.isDeleted ? null : this.attachments(message),
      message.isDeleted ? null : this.reactions(message),
      message.isDeleted ? null : this.actions(message, mine, streaming),
    );
  }

  /** "‹ 2 / 3 ›": the message's versions, each arrow choosing the neighbour for everyone. */
  private versions(message: Message, streaming: boolean): HTMLElement | null {
    const versions = message.versions;
    if (!versions || versions.count < 2) return null;
    const step = (label: VersionStep, symbol: string, target: string | null) =>
      h(
        'button',
        {
          type: 'button',
          'aria-label': label,
          disabled: !target || streaming,
          onclick: () => {
            if (!target) return;
            void this.ctx.client
              .activateMessage(target)
              .then((change) => this.ctx.switched(change, label))
              .catch(this.ctx.fail);
          },
        },
        symbol,
      );
    return h(
      'div',
      {
        class: 'versions',
        role: 'group',
        'aria-label': `Version ${versions.number} of ${versions.count}`,
      },
      step('Previous version', '‹', versions.previousId),
      h('span', { 'aria-hidden': 'true' }, `${versions.number} / ${versions.count}`),
      step('Next version', '›', versions.nextId),
    );
  }

  private attachments(message: Message): HTMLElement | null {
    if (!message.attachments.length) return null;
    const list = h('ul', { class: 'files', 'aria-label': 'Attachments' });
    for (const file of message.attachments) {
      const item = h('li');
      if (file.mimeType.startsWith('image/')) {
        const img = h('img', { alt: file.originalName, class: 'preview' });
        this.ctx.client
          .attachmentContent(file)
          .then((blob) => {
            const url = URL.createObjectURL(blob);
            this.blobUrls.push(url);
            img.src = url;
          })
          .catch(() => (img.alt = `${file.originalName} (could not load)`));
        item.append(img);
      }
      item.append(
        h(
          'button',
          { type: 'button', onclick: () => void this.download(file) },
          `Download ${file.originalName}`,
        ),
      );
      list.append(item);
    }
    return list;
  }

  private async download(file: Message['attachments'][number]): Promise<void> {
    try {
      const url = URL.createObjectURL(await this.ctx.client.attachmentContent(file));
      const a = h('a', { href: url, download: file.originalName });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      this.ctx.fail(error);
    }
  }

  private reactions(message: Message): HTMLElement {
    const me = this.ctx.meId();
    const counts = new Map(message.reactions.map((r) => [r.emoji, r]));
    const emojis = [...new Set([...message.reactions.map((r) => r.emoji), ...QUICK_REACTIONS])];
    return h(
      'div',
      { class: 'reactions', role: 'group', 'aria-label': 'Reactions' },
      emojis.map((emoji) => {
        const summary = counts.get(emoji);
        const pressed = summary?.userIds.includes(me) ?? false;
        const toggle = () =>
          (pressed
            ? this.ctx.client.unreact(message.id, emoji)
            : this.ctx.client.react(message.id, emoji)
          ).catch(this.ctx.fail);
        return h(
          'button',
          {
            type: 'button',
            'aria-pressed': String(pressed),
            'data-count': summary?.count ?? 0,
            'data-key': emoji,
            onclick: () => void toggle(),
          },
          summary ? `${emoji} ${summary.count}` : emoji,
        );
      }),
    );
  }

  private actions(message: Message, mine: boolean, streaming: boolean): HTMLElement {
    const { client, fail } = this.ctx;
    const generationId = message.metadata?.generationId;
    const buttons: HTMLElement[] = [];
    const versions = this.versions(message, streaming);
    if (versions) buttons.push(versions);
    const button = (label: string, run: () => Promise<unknown>, disabled = false) =>
      h('button', { type: 'button', disabled, onclick: () => void run().catch(fail) }, label);
    if (message.role === 'ASSISTANT') {
      if (streaming && typeof generationId === 'string')
        buttons.push(button('Stop', () => client.stopGeneration(generationId)));
      buttons.push(button('Regenerate', () => client.regenerate(message.id), streaming));
    }
    if (mine && message.role === 'USER') {
      buttons.push(button('Edit', () => this.editInPlace(message, 'save')));
      buttons.push(button('Edit and resend', () => this.editInPlace(message, 'resend')));
      buttons.push(
        button('Delete', async () => {
          if (confirm('Delete this message?')) await client.deleteMessage(message.id);
        }),
      );
    }
    return h('div', { class: 'actions' }, buttons);
  }

  private editInPlace(message: Message, mode: 'save' | 'resend'): Promise<void> {
    const article = this.articles.get(message.id);
    const body = article?.querySelector('.body');
    if (!article || !body) return Promise.resolve();
    const input = h('textarea', { 'aria-label': 'Edit message', rows: 3 });
    input.value = message.content ?? '';
    const label = mode === 'save' ? 'Edit' : 'Edit and resend';
    /** Closes the form; the keyboard's focus goes back to the button that opened it. */
    const close = (shown: Message) => {
      this.editing.delete(message.id);
      this.upsert(shown);
      this.refocus(this.articles.get(message.id), label);
    };
    const restore = () => close(this.messages.get(message.id) ?? message);
    const form = h(
      'form',
      {
        class: 'edit',
        onsubmit: (event: Event) => {
          event.preventDefault();
          const content = input.value;
          if (!content.trim()) return input.focus();
          const done =
            mode === 'save'
              ? this.ctx.client.editMessage(message.id, content).then(close)
              : this.ctx.client.editAndResend(message.id, content).then((r) => {
                  this.editing.delete(message.id);
                  this.upsert(r.message);
                });
          done.catch(this.ctx.fail);
        },
        onkeydown: (event: Event) => {
          const key = event as KeyboardEvent;
          if (key.key === 'Escape') restore();
          // As in the composer: Enter saves, Shift+Enter is a new line.
          else if (key.key === 'Enter' && !key.shiftKey && !key.isComposing) {
            event.preventDefault();
            form.requestSubmit();
          }
        },
      },
      input,
      h('button', { type: 'submit' }, mode === 'save' ? 'Save' : 'Resend'),
      h('button', { type: 'button', onclick: restore }, 'Cancel'),
    );
    this.editing.set(message.id, form);
    body.replaceChildren(form);
    input.focus();
    return Promise.resolve();
  }
}

/** What names a control across a re-render: a reaction's emoji, else its label or text. */
function keyOf(element: Element): string {
  return (
    element.getAttribute('data-key') ??
    element.getAttribute('aria-label') ??
    element.textContent ??
    ''
  );
}
