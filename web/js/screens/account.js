// Account: who is signed in, sign out (revokes the session on the server), change the password,
// sign out on every device, delete the account with all its data.

import * as api from '../api.js';
import * as auth from '../auth.js';
import { errorCard, field, formError } from '../components.js';
import { announce, append, escapeCancels, formatDate, h, replace } from '../dom.js';
import { state } from '../state.js';

export const title = 'Account';
export const access = 'user';

// The server's shortest password (sign-up says the same); its other rules come back in words.
const MIN_PASSWORD = 10;

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

/** The session is already over here (its refresh token was refused): say so on sign-in. */
function sessionEnded(err, go) {
  state.flash = err.message;
  go('#/signin');
}

/**
 * A message under one field, tied to it with aria-describedby and aria-invalid, so that it is
 * read with the field when focus lands there.
 */
function fieldProblem(f) {
  const id = `${f.input.id}-problem`;
  const hint = f.input.getAttribute('aria-describedby');
  const node = h('p', { id, class: 'field-error', hidden: true });
  f.input.after(node); // right under the field, above its hint
  return {
    show(message) {
      node.textContent = message;
      node.hidden = false;
      f.input.setAttribute('aria-invalid', 'true');
      f.input.setAttribute('aria-describedby', hint ? `${id} ${hint}` : id);
      // Moving focus to the field reads the message with it; a field that already has focus
      // (Enter pressed in it) would not be read again, so the message is said instead.
      if (document.activeElement === f.input) announce(message);
      else f.input.focus();
    },
    clear() {
      node.textContent = '';
      node.hidden = true;
      f.input.removeAttribute('aria-invalid');
      if (hint) f.input.setAttribute('aria-describedby', hint);
      else f.input.removeAttribute('aria-describedby');
    },
  };
}

/** "password must not contain the email address" -> "Password must not contain the email address." */
function sentence(text) {
  const s = String(text || '').trim();
  if (!s) return 'Choose another password.';
  return `${s[0].toUpperCase()}${s.slice(1)}${/[.!?]$/.test(s) ? '' : '.'}`;
}

function changePasswordForm(user, go) {
  const current = field({
    label: 'Current password', name: 'current-password', type: 'password', autocomplete: 'current-password',
  });
  const fresh = field({
    label: 'New password', name: 'new-password', type: 'password', autocomplete: 'new-password',
    hint: `At least ${MIN_PASSWORD} characters. A few unrelated words make a strong one.`,
    minlength: MIN_PASSWORD,
  });
  const currentProblem = fieldProblem(current);
  const freshProblem = fieldProblem(fresh);
  const error = formError();
  error.node.setAttribute('tabindex', '-1');
  // Focusable, so that keyboard and screen-reader users land on the outcome (the form is empty).
  const done = h('p', { class: 'banner banner-info', role: 'status', tabindex: '-1', hidden: true });
  const submit = h('button', { type: 'submit', class: 'button primary block' }, 'Change password');

  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title', class: 'card-title', text: 'Change password' }),
    h('p', { class: 'hint' }, 'Changing it signs you out on your other devices; this one stays signed in.'),
    // For password managers: which account the new password belongs to (not shown, not focusable).
    user?.email && h('input', {
      type: 'email', name: 'username', autocomplete: 'username', value: user.email, readonly: true, hidden: true,
    }),
    current.node,
    fresh.node,
    error.node,
    submit,
    done);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    currentProblem.clear();
    freshProblem.clear();
    error.clear();
    done.hidden = true;
    if (!current.input.value) {
      currentProblem.show('Enter your current password.');
      return;
    }
    if (fresh.input.value.length < MIN_PASSWORD) {
      freshProblem.show(`Choose a password of at least ${MIN_PASSWORD} characters.`);
      return;
    }
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const tokens = await api.changePassword(current.input.value, fresh.input.value);
      // The old refresh token was revoked with the other sessions: keep the new pair, where
      // the old one was kept ("Stay signed in" or not), so this device stays signed in.
      auth.acceptTokens(tokens);
      current.input.value = '';
      fresh.input.value = '';
      done.textContent = 'Password changed. You were signed out on your other devices.';
      done.hidden = false;
      done.focus();
    } catch (err) {
      if (err.code === 'session_ended') { sessionEnded(err, go); return; }
      if (err.code === 'wrong_password') {
        current.input.value = '';
        currentProblem.show('That is not your current password.');
      } else if (err.code === 'weak_password') {
        freshProblem.show(sentence(err.message));
      } else if (err.code === 'validation_error' && (err.details || []).some((d) => /password$/.test(d.field || ''))) {
        // Only length limits are left for the API's own validation to refuse.
        const which = err.details.some((d) => d.field === 'current_password') ? currentProblem : freshProblem;
        which.show('This password is too long. Choose a shorter one.');
      } else {
        // Throttled (429: too many wrong current passwords), offline, server trouble.
        error.show(err);
        error.node.focus();
      }
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  return form;
}

/** "Sign out on all devices", which asks once more inline, like deleting a result does. */
function signOutEverywhere(go) {
  const feedback = h('div', { class: 'feedback' });
  const ask = h('button', { type: 'button', class: 'button block', id: 'sign-out-all' }, 'Sign out on all devices');
  const yes = h('button', { type: 'button', class: 'button primary' }, 'Yes, sign out everywhere');
  const no = h('button', { type: 'button', class: 'button' }, 'Cancel');
  const question = h('div', {
    class: 'confirm-question', role: 'group', 'aria-label': 'Confirm signing out on all devices', hidden: true,
  }, h('span', { text: 'Sign out on every device, this one too?' }), yes, no);

  ask.addEventListener('click', () => { ask.hidden = true; question.hidden = false; yes.focus(); });
  no.addEventListener('click', () => {
    question.hidden = true;
    ask.hidden = false;
    replace(feedback);
    ask.focus();
  });
  escapeCancels(question, no, yes);
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    replace(feedback);
    try {
      await api.logoutAll();
    } catch (err) {
      if (err.code === 'session_ended') { sessionEnded(err, go); return; }
      // Not signed out anywhere (offline, say): this device keeps its session, so the person
      // knows that the other devices are still signed in and can try again.
      replace(feedback, errorCard(err, { onRetry: () => yes.click() }));
      yes.disabled = false;
      no.disabled = false;
      return;
    }
    // The server revoked this device's refresh token too: forget it here, like "Sign out".
    auth.clear();
    state.flash = 'You are signed out on all your devices.';
    go('#/signin');
  });

  return h('section', { class: 'card', 'aria-labelledby': 'devices-title' },
    h('h2', { id: 'devices-title', class: 'card-title', text: 'Your devices' }),
    h('p', {}, 'Lost a phone, or signed in on a shared computer? This ends every session of your account, this one too: each device must sign in again.'),
    ask,
    question,
    feedback);
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
  // The password, asked again: a phone left unlocked must not be enough to delete everything.
  const confirmPassword = field({
    label: 'Your password', name: 'delete-password', type: 'password', autocomplete: 'current-password',
  });
  const confirmProblem = fieldProblem(confirmPassword);
  const deleteAccount = h('button', { type: 'button', class: 'button danger block', id: 'delete-account', disabled: true },
    'Delete my account and all my data');
  understand.addEventListener('change', () => { deleteAccount.disabled = !understand.checked; });
  deleteAccount.addEventListener('click', async () => {
    confirmProblem.clear();
    replace(feedback);
    if (!confirmPassword.input.value) {
      confirmProblem.show('Enter your password to delete your account.');
      return;
    }
    deleteAccount.disabled = true;
    try {
      await api.deleteAccount(confirmPassword.input.value);
      auth.clear();
      state.flash = 'Your account and all its data were deleted.';
      go('#/signin');
    } catch (err) {
      if (err.code === 'session_ended') { sessionEnded(err, go); return; }
      deleteAccount.disabled = !understand.checked;
      if (err.code === 'wrong_password') {
        confirmPassword.input.value = '';
        confirmProblem.show('That is not your password. Nothing was deleted.');
      } else if (err.code === 'validation_error') {
        confirmProblem.show('This password is too long. Nothing was deleted.');
      } else {
        // Throttled (too many wrong passwords), offline, server trouble: nothing was deleted.
        replace(feedback, errorCard(err, { onRetry: () => deleteAccount.click() }));
      }
    }
  });

  append(view,
    h('h1', { text: 'Account' }),
    h('section', { class: 'card', 'aria-labelledby': 'who-title' },
      h('h2', { id: 'who-title', class: 'card-title', text: 'Signed in as' }),
      h('p', { class: 'account-email', text: user?.email || '…' }),
      user?.created_at && h('p', { class: 'hint', text: `Member since ${formatDate(user.created_at)}` }),
      signOutButton),
    changePasswordForm(user, go),
    signOutEverywhere(go),
    h('section', { class: 'card danger-zone', 'aria-labelledby': 'delete-title' },
      h('h2', { id: 'delete-title', class: 'card-title', text: 'Delete account' }),
      h('p', {}, 'This deletes your account, every result in your history and all your photos and heatmaps, for good. It cannot be undone.'),
      h('div', { class: 'check' },
        understand,
        h('label', { for: 'delete-understand' }, 'I understand that everything will be deleted')),
      confirmPassword.node,
      deleteAccount),
    feedback);
}
