// Account: who is signed in, sign out (revokes the session on the server), delete the account
// with all its data.

import * as api from '../api.js';
import * as auth from '../auth.js';
import { errorCard } from '../components.js';
import { append, formatDate, h, replace } from '../dom.js';
import { state } from '../state.js';

export const title = 'Account';
export const access = 'user';

async function signOut(go) {
  const token = auth.refreshTokenForLogout();
  try {
    if (token) await api.logout(token);
  } catch {
    // Offline or already revoked: forget the tokens here anyway; they expire on their own.
  }
  auth.clear();
  state.flash = 'You are signed out.';
  go('#/signin');
}

export async function render(view, _params, { go }) {
  const feedback = h('div', { class: 'feedback' });
  let user = auth.getUser();
  if (!user) {
    try {
      user = await api.me();
      auth.setUser(user);
    } catch (err) {
      if (err.code === 'session_ended') throw err;
      replace(feedback, errorCard(err, { onRetry: () => go('#/account'), retryOnline: true }));
    }
  }

  const signOutButton = h('button', { type: 'button', class: 'button block', id: 'sign-out' }, 'Sign out');
  signOutButton.addEventListener('click', () => {
    signOutButton.disabled = true;
    signOut(go);
  });

  const understand = h('input', { type: 'checkbox', id: 'delete-understand' });
  const deleteAccount = h('button', { type: 'button', class: 'button danger block', id: 'delete-account', disabled: true },
    'Delete my account and all my data');
  understand.addEventListener('change', () => { deleteAccount.disabled = !understand.checked; });
  deleteAccount.addEventListener('click', async () => {
    deleteAccount.disabled = true;
    replace(feedback);
    try {
      await api.deleteAccount();
      auth.clear();
      state.flash = 'Your account and all its data were deleted.';
      go('#/signin');
    } catch (err) {
      if (err.code === 'session_ended') { go('#/signin'); return; }
      replace(feedback, errorCard(err, { onRetry: () => deleteAccount.click() }));
      deleteAccount.disabled = !understand.checked;
    }
  });

  append(view,
    h('h1', { text: 'Account' }),
    h('section', { class: 'card', 'aria-labelledby': 'who-title' },
      h('h2', { id: 'who-title', class: 'card-title', text: 'Signed in as' }),
      h('p', { class: 'account-email', text: user?.email || '…' }),
      user?.created_at && h('p', { class: 'hint', text: `Member since ${formatDate(user.created_at)}` }),
      signOutButton),
    h('section', { class: 'card danger-zone', 'aria-labelledby': 'delete-title' },
      h('h2', { id: 'delete-title', class: 'card-title', text: 'Delete account' }),
      h('p', {}, 'This deletes your account, every result in your history and all your photos and heatmaps, for good. It cannot be undone.'),
      h('div', { class: 'check' },
        understand,
        h('label', { for: 'delete-understand' }, 'I understand that everything will be deleted')),
      deleteAccount),
    feedback);
}
