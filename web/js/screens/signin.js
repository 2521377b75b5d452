// Sign in, or continue as a guest (results are then shown but not kept).

import * as api from '../api.js';
import * as auth from '../auth.js';
import { field, formError } from '../components.js';
import { announce, append, h } from '../dom.js';
import { takeFlash } from '../state.js';

export const title = 'Sign in';
// Signed-in people go home instead (e.g. after Back): signing in again here would leave the
// current session alive on the server while this device forgot it.
export const access = 'signed-out';

export function render(view, _params, { go }) {
  const email = field({ label: 'Email', name: 'email', type: 'email', autocomplete: 'username' });
  const password = field({
    label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password',
  });
  const remember = h('input', { type: 'checkbox', id: 'signin-remember', name: 'remember' });
  const error = formError();
  const submit = h('button', { type: 'submit', class: 'button primary block' }, 'Sign in');

  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title', class: 'card-title', text: 'With your account' }),
    email.node,
    password.node,
    h('div', { class: 'check' },
      remember,
      h('label', { for: 'signin-remember' }, 'Stay signed in on this device')),
    error.node,
    submit,
    h('p', { class: 'center' }, 'New here? ', h('a', { href: '#/signup' }, 'Create an account')));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    if (!form.checkValidity()) {
      error.show({ message: 'Enter your email and password.' });
      return;
    }
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const tokens = await api.login(email.input.value.trim(), password.input.value);
      auth.acceptTokens(tokens, { remember: remember.checked });
      auth.setUser(await api.me());
      announce('Signed in');
      go('#/home');
    } catch (err) {
      error.show(err);
      password.input.value = '';
      password.input.focus();
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  const guest = h('section', { class: 'card', 'aria-labelledby': 'guest-title' },
    h('h2', { id: 'guest-title', class: 'card-title', text: 'Or try it as a guest' }),
    h('p', {}, 'You get the full result, but it is not saved: no history, nothing kept on our side.'),
    h('button', {
      type: 'button', class: 'button block', id: 'continue-guest',
      onclick: () => { auth.continueAsGuest(); go('#/home'); },
    }, 'Continue as guest'));

  const flash = takeFlash();
  append(view,
    h('h1', { text: 'Welcome to SkinScan' }),
    h('p', { class: 'lead' }, 'Photograph a skin spot and get a second opinion from a model, with a heatmap of what it looked at.'),
    flash && h('p', { class: 'banner banner-info', role: 'status', text: flash }),
    form,
    guest);
}
