// The page's smaller parts: search, the open conversation's header (rename, add people, leave,
// who is in it) and the composer (text, files, typing).
import type { Attachment, Conversation, ParleyClient, Realtime } from './api.js';
import { h } from './dom.js';

export class SearchPanel {
  readonly results = h('section', {
    class: 'results',
    hidden: true,
    'aria-labelledby': 'results-title',
  });
  private readonly list = h('ul', { 'aria-label': 'Search results' });
  private readonly input = h('input', {
    type: 'search',
    'aria-label': 'Search',
    placeholder: 'Search messages',
    enterkeyhint: 'search',
  });
  readonly form = h('form', { role: 'search', class: 'search' }, this.input);

  constructor(
    private readonly client: ParleyClient,
    private readonly fail: (error: unknown) => void,
  ) {
    this.results.append(
      h('h2', { id: 'results-title' }, 'Search results'),
      this.list,
      h('button', { type: 'button', onclick: () => this.close() }, 'Close search'),
    );
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.close();
    });
    this.list.addEventListener('click', (event) => {
      if ((event.target as Element).closest('a')) this.results.hidden = true;
    });
  }

  private close(): void {
    this.results.hidden = true;
    this.input.value = '';
  }

  private async run(): Promise<void> {
    const query = this.input.value.trim();
    if (!query) return this.close();
    try {
      const found = await this.client.search(query, { limit: 20 });
      this.list.replaceChildren(
        ...found.items.map((hit) =>
          h(
            'li',
            {},
            h('a', { href: `#/c/${hit.message.conversationId}` }, hit.conversationTitle),
            ' ',
            h('span', { class: 'snippet' }, snippet(hit.snippet)),
          ),
        ),
      );
      if (!found.items.length) this.list.append(h('li', {}, 'Nothing found.'));
      this.results.hidden = false;
    } catch (error) {
      this.fail(error);
    }
  }
}

/** The server's snippet is escaped text with <mark>…</mark> around matches: rebuilt as nodes. */
function snippet(escaped: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const decode = (s: string) =>
    s.replace(/&(lt|gt|quot|#39|#x27|amp);/g, (_m, e: string) =>
      e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'amp' ? '&' : "'",
    );
  escaped.split(/(<mark>.*?<\/mark>)/).forEach((part) => {
    const mark = /^<mark>(.*)<\/mark>$/.exec(part);
    out.append(mark ? h('mark', {}, decode(mark[1] ?? '')) : decode(part));
  });
  return out;
}

interface HeaderHooks {
  changed: () => void;
  left: () => void;
  meId: () => string;
  online: (userId: string) => boolean;
}

export class ConversationHeader {
  private readonly title = h('h2', { class: 'title' });
  private readonly people = h('p', { class: 'people' });
  private readonly titleRow = h('div', { class: 'title-row' });
  private readonly dialogInput = h('input', {
    name: 'username',
    autocomplete: 'off',
    required: true,
  });
  private readonly dialogError = h('p', { role: 'alert', class: 'error' });
  private readonly dialog = h(
    'dialog',
    { 'aria-labelledby': 'add-title' },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: 'add-title' }, 'Add people'),
      h('label', {}, 'Username ', this.dialogInput),
      this.dialogError,
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'submit' }, 'Add'),
        h('button', { type: 'button', onclick: () => this.dialog.close() }, 'Cancel'),
      ),
    ),
  );
  readonly element = h(
    'div',
    { class: 'conversation-header' },
    this.titleRow,
    this.people,
    this.dialog,
  );
  private conversation: Conversation | undefined;

  constructor(
    private readonly client: ParleyClient,
    private readonly fail: (error: unknown) => void,
    private readonly hooks: HeaderHooks,
  ) {
    this.dialog.querySelector('form')?.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.addPerson();
    });
  }

  show(conversation: Conversation): void {
    this.conversation = conversation;
    this.title.textContent = conversation.title;
    // A header drawn anew keeps the keyboard's place: on the same button, or on Rename after the
    // rename form (whose input had it) closes.
    const active = document.activeElement;
    const focused =
      active instanceof HTMLButtonElement && this.titleRow.contains(active)
        ? active.textContent
        : active && this.titleRow.querySelector('form.rename')?.contains(active)
          ? 'Rename'
          : undefined;
    this.titleRow.replaceChildren(
      h('a', { href: '#', class: 'back' }, '← Conversations'),
      this.title,
      h('button', { type: 'button', onclick: () => this.rename() }, 'Rename'),
      h('button', { type: 'button', onclick: () => this.openDialog() }, 'Add people'),
      h('button', { type: 'button', onclick: () => void this.leave() }, 'Leave'),
    );
    if (focused)
      [...this.titleRow.querySelectorAll('button')].find((b) => b.textContent === focused)?.focus();
    this.renderPeople();
  }

  renderPeople(): void {
    const me = this.hooks.meId();
    this.people.replaceChildren(
      'With: ',
      ...(this.conversation?.participants ?? []).flatMap((p, i) => [
        i ? ', ' : '',
        h(
          'span',
          { class: p.userId !== me && this.hooks.online(p.userId) ? 'online' : '' },
          p.userId === me ? `${p.username ?? 'you'} (you)` : (p.username ?? 'someone'),
          p.userId !== me && this.hooks.online(p.userId) ? ' (online)' : '',
        ),
      ]),
    );
  }

  private rename(): void {
    const conversation = this.conversation;
    if (!conversation) return;
    const input = h('input', { 'aria-label': 'Title', maxlength: 200, required: true });
    input.value = conversation.title;
    const cancel = () => this.show(conversation);
    const form = h(
      'form',
      {
        class: 'rename',
        onkeydown: (event: Event) => {
          if ((event as KeyboardEvent).key === 'Escape') cancel();
        },
      },
      input,
      h('button', { type: 'submit' }, 'Save'),
      h('button', { type: 'button', onclick: cancel }, 'Cancel'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!input.value.trim()) return input.focus();
      this.client
        .updateConversation(conversation.id, { title: input.value })
        .then(() => this.hooks.changed())
        .catch(this.fail);
    });
    this.title.replaceWith(form);
    input.select();
  }

  private openDialog(): void {
    this.dialogInput.value = '';
    this.dialogError.textContent = '';
    this.dialog.showModal();
  }

  private async addPerson(): Promise<void> {
    const conversation = this.conversation;
    if (!conversation) return;
    try {
      const user = await this.client.lookupUser(this.dialogInput.value.trim());
      await this.client.addParticipant(conversation.id, { userId: user.id });
      this.dialog.close();
      this.hooks.changed();
    } catch (error) {
      this.dialogError.textContent = error instanceof Error ? error.message : 'Could not add them';
    }
  }

  private async leave(): Promise<void> {
    const conversation = this.conversation;
    if (!conversation || !confirm(`Leave “${conversation.title}”?`)) return;
    try {
      await this.client.removeParticipant(conversation.id, this.hooks.meId());
      this.hooks.left();
    } catch (error) {
      this.fail(error);
    }
  }
}

export class Composer {
  private readonly input = h('textarea', {
    'aria-label': 'Message',
    rows: 2,
    placeholder: 'Write a message (Enter sends, Shift+Enter for a new line)',
  });
  private readonly file = h('input', { type: 'file', multiple: true, class: 'visually-hidden' });
  private readonly pending = h('ul', { class: 'pending', 'aria-label': 'Files to send' });
  private files: Attachment[] = [];
  private typingSince = 0;
  readonly element = h(
    'form',
    { class: 'composer' },
    this.pending,
    this.input,
    h('label', { class: 'attach' }, this.file, 'Attach file'),
    h('button', { type: 'submit' }, 'Send'),
  );

  constructor(
    private readonly client: ParleyClient,
    private readonly realtime: Realtime,
    private readonly fail: (error: unknown) => void,
    private readonly conversationId: () => string | undefined,
  ) {
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.send();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.send();
      }
    });
    this.input.addEventListener('input', () => this.typed());
    this.input.addEventListener('blur', () => this.stopTyping());
    this.file.addEventListener('change', () => void this.upload());
  }

  private typed(): void {
    const conversationId = this.conversationId();
    if (!conversationId || !this.input.value) return this.stopTyping();
    // One start every 3 s while typing keeps the indicator alive without a flood of events.
    if (Date.now() - this.typingSince < 3_000) return;
    this.typingSince = Date.now();
    this.realtime.call('typing:start', { conversationId }).catch(() => undefined);
  }

  private stopTyping(): void {
    const conversationId = this.conversationId();
    if (!this.typingSince || !conversationId) return;
    this.typingSince = 0;
    this.realtime.call('typing:stop', { conversationId }).catch(() => undefined);
  }

  private async upload(): Promise<void> {
    for (const file of this.file.files ?? []) {
      try {
        this.files.push(await this.client.upload(file, file.name));
      } catch (error) {
        this.fail(error);
      }
    }
    this.file.value = '';
    this.renderPending();
  }

  private renderPending(): void {
    this.pending.replaceChildren(
      ...this.files.map((file) =>
        h(
          'li',
          {},
          file.originalName,
          ' ',
          h(
            'button',
            {
              type: 'button',
              onclick: () => {
                this.files = this.files.filter((f) => f.id !== file.id);
                this.renderPending();
              },
            },
            `Remove ${file.originalName}`,
          ),
        ),
      ),
    );
  }

  private async send(): Promise<void> {
    const conversationId = this.conversationId();
    const content = this.input.value;
    if (!conversationId || (!content.trim() && !this.files.length)) return;
    const attachments = this.files.map((f) => f.id);
    this.input.value = '';
    this.files = [];
    this.renderPending();
    this.stopTyping();
    try {
      await this.client.sendMessage(conversationId, {
        content,
        ...(attachments.length ? { attachments } : {}),
      });
    } catch (error) {
      this.input.value = content;
      this.fail(error);
    }
  }
}
