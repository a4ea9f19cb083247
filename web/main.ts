// Parley's web client: sign-in, then the chat page; the session kept across reloads.
import { ParleyClient, ParleyError, type StoredSession, type User } from './api.js';
import { ChatPage } from './chat.js';
import { h } from './dom.js';

const STORAGE_KEY = 'parley.session';
// The session is kept for reloads and for the other tabs; the tokens keeper saves each new one
// and, inside a lock shared by the tabs (Web Locks), reads it before renewing, so two tabs never
// present one refresh token twice (the server would revoke the session).
const client = new ParleyClient('', {
  store: {
    load: () => {
      const saved = localStorage.getItem(STORAGE_KEY);
      return saved ? (JSON.parse(saved) as StoredSession) : null;
    },
    save: (session) =>
      session
        ? localStorage.setItem(STORAGE_KEY, JSON.stringify(session))
        : localStorage.removeItem(STORAGE_KEY),
  },
});
const root = document.getElementById('app') ?? document.body;
const alerts = h('div', { role: 'alert', class: 'alerts' });
let page: ChatPage | undefined;

function fail(error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  const item = h(
    'p',
    {},
    text,
    ' ',
    h('button', { type: 'button', onclick: () => item.remove() }, 'Dismiss'),
  );
  alerts.append(item);
  setTimeout(() => item.remove(), 8_000);
}

client.tokens.onChange((session) => {
  if (!session && page) showSignIn();
});

// Another tab of this session renewed its tokens: take them (the old refresh token is spent), or
// it signed out; another account signed in there: start again as that one.
window.addEventListener('storage', (event) => {
  if (event.key !== STORAGE_KEY) return;
  const next = event.newValue ? (JSON.parse(event.newValue) as StoredSession) : null;
  if (!client.tokens.sync(next)) location.reload();
});

function showSignIn(message = ''): void {
  page?.destroy();
  page = undefined;
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const password = h('input', {
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
    minlength: 8,
  });
  const username = h('input', {
    name: 'username',
    autocomplete: 'username',
    pattern: '[A-Za-z0-9_]{3,32}',
    'aria-describedby': 'username-hint',
  });
  const error = h('p', { role: 'alert', class: 'error' }, message);
  const form = h(
    'form',
    { class: 'auth' },
    h('h1', {}, 'Parley'),
    h('label', {}, 'Email', email),
    h('label', {}, 'Password', password),
    h('label', {}, 'Username', username),
    h('small', { id: 'username-hint' }, 'Only for a new account: 3–32 letters, digits or _'),
    error,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit' }, 'Sign in'),
      h('button', { type: 'button', value: 'register' }, 'Create account'),
    ),
  );
  const submit = async (register: boolean) => {
    if (!form.reportValidity()) return;
    error.textContent = '';
    try {
      const user = register
        ? await client.register({
            email: email.value,
            password: password.value,
            ...(username.value ? { username: username.value } : {}),
          })
        : await client.login({ email: email.value, password: password.value });
      showChat(user);
    } catch (e) {
      error.textContent =
        e instanceof ParleyError && e.code === 'VALIDATION_ERROR'
          ? `${e.message}: ${describe(e.details)}`
          : e instanceof Error
            ? e.message
            : 'Something went wrong';
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit(false);
  });
  form.querySelector('button[value=register]')?.addEventListener('click', () => void submit(true));
  root.replaceChildren(form, alerts);
  email.focus();
}

function describe(details: unknown): string {
  if (!Array.isArray(details)) return '';
  return details
    .map((d: { path?: unknown; message?: unknown }) =>
      `${Array.isArray(d.path) ? d.path.join('.') : ''} ${typeof d.message === 'string' ? d.message : ''}`.trim(),
    )
    .join('; ');
}

function showChat(user: User): void {
  page?.destroy();
  page = new ChatPage(client, user, fail, () => {
    void client.logout().catch(() => undefined);
    showSignIn();
  });
  root.replaceChildren(page.element, alerts);
}

async function start(): Promise<void> {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (!saved) return showSignIn();
  try {
    client.tokens.restore(JSON.parse(saved) as StoredSession);
    showChat(await client.me());
  } catch {
    client.tokens.clear();
    showSignIn();
  }
}

void start();
