// Create an account (and sign in with it).

import * as api from '../api.js';
import * as auth from '../auth.js';
import { field, formError } from '../components.js';
import { announce, append, h } from '../dom.js';

export const title = 'Create an account';
// Signed-in people go home instead (e.g. after Back): signing in again here would leave the
// current session alive on the server while this device forgot it.
export const access = 'signed-out';

const MIN_PASSWORD = 10;

export function render(view, _params, { go }) {
  const email = field({ label: 'Email', name: 'email', type: 'email', autocomplete: 'email' });
  const password = field({
    label: 'Password', name: 'new-password', type: 'password', autocomplete: 'new-password',
    hint: `At least ${MIN_PASSWORD} characters. A few unrelated words make a strong one.`,
    minlength: MIN_PASSWORD,
  });
  const remember = h('input', { type: 'checkbox', id: 'signup-remember', name: 'remember' });
  const error = formError();
  const submit = h('button', { type: 'submit', class: 'button primary block' }, 'Create account');

  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'signup-title' },
    h('h2', { id: 'signup-title', class: 'card-title', text: 'Your account' }),
    email.node,
    password.node,
    h('div', { class: 'check' },
      remember,
      h('label', { for: 'signup-remember' }, 'Stay signed in on this device')),
    error.node,
    submit,
    h('p', { class: 'center' }, 'Already have an account? ', h('a', { href: '#/signin' }, 'Sign in')));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    if (!email.input.checkValidity()) {
      error.show({ message: 'Enter a valid email address.' });
      email.input.focus();
      return;
    }
    if (password.input.value.length < MIN_PASSWORD) {
      error.show({ message: `Choose a password of at least ${MIN_PASSWORD} characters.` });
      password.input.focus();
      return;
    }
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const answer = await api.register(email.input.value.trim(), password.input.value);
      auth.acceptTokens(answer.tokens, { remember: remember.checked });
      auth.setUser(answer.user);
      announce('Account created. You are signed in.');
      go('#/home');
    } catch (err) {
      if (err.status === 409) error.show({ message: 'An account with this email already exists. Sign in instead.' });
      else error.show(err);
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  append(view,
    h('h1', { text: 'Create your account' }),
    h('p', { class: 'lead' }, 'With an account your results are kept in a private history that only you can see, and you can delete them at any time.'),
    form);
}
