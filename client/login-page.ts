// The login form: says why the user is here (session expired, logged out), reports wrong credentials
// and throttling (with the wait, counted down on the button), and returns to where the user came from.
import { postLogin } from './http/api.ts';
import { isLoginReason, LOGIN_MESSAGES, safeNext } from './navigation.ts';
import { required, setText } from './view/dom.ts';

const SUBMIT_LABEL = 'Log in';

export function startLoginPage(root: Document): void {
  const form = required(root, '#login-form', HTMLFormElement);
  const username = required(root, '#username', HTMLInputElement);
  const password = required(root, '#password', HTMLInputElement);
  const submit = required(root, '#login-submit', HTMLButtonElement);
  const notice = required(root, '#login-notice', HTMLElement);
  const error = required(root, '#login-error', HTMLElement);

  const params = new URLSearchParams(location.search);
  const reason = params.get('reason');
  const next = safeNext(params.get('next'));
  if (isLoginReason(reason)) {
    setText(notice, LOGIN_MESSAGES[reason]);
    notice.hidden = false;
  }

  let blockedUntil = 0;
  let countdown: ReturnType<typeof setInterval> | undefined;

  const showError = (text: string) => {
    setText(error, text);
    error.hidden = false;
  };
  const blockFor = (seconds: number) => {
    blockedUntil = Date.now() + seconds * 1000;
    showError(`Too many login attempts. Try again in ${seconds} s.`);
    submit.disabled = true;
    clearInterval(countdown);
    const update = () => {
      const left = Math.ceil((blockedUntil - Date.now()) / 1000);
      if (left > 0) {
        setText(submit, `Try again in ${left} s`);
        return;
      }
      clearInterval(countdown);
      submit.disabled = false;
      setText(submit, SUBMIT_LABEL);
    };
    update();
    countdown = setInterval(update, 250);
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (Date.now() < blockedUntil || submit.disabled) return;
    void (async () => {
      submit.disabled = true;
      error.hidden = true;
      form.setAttribute('aria-busy', 'true');
      const result = await postLogin(username.value, password.value);
      form.removeAttribute('aria-busy');
      submit.disabled = false;
      switch (result.kind) {
        case 'ok':
          location.replace(next);
          return;
        case 'wrongCredentials':
          showError('Wrong username or password.');
          password.value = '';
          password.focus();
          return;
        case 'throttled':
          blockFor(result.retryAfterSeconds);
          return;
        case 'failed':
          showError(`Login failed: ${result.message}.`);
          return;
      }
    })();
  });
}
