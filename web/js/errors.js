// Turn any failure into words a person can act on. Every message says what happened and what
// to do; `retry` says whether trying the same thing again can help.

const IMAGE_PROBLEMS = {
  empty: 'The file is empty. Choose a photo instead.',
  not_an_image: "This file isn't a photo SkinScan can read. Choose a JPEG or PNG picture.",
  corrupt: 'This photo seems damaged or incomplete. Take it again or choose another one.',
  too_large: 'This photo is too large. Choose a smaller one (at most 10 MB), or take a new one.',
  payload_too_large: 'This photo is too large. Choose a smaller one (at most 10 MB), or take a new one.',
  too_many_pixels: 'This photo has too many pixels. Choose a smaller one, or take a new one.',
  unsupported_media_type: "This file type isn't supported. Choose a JPEG or PNG picture.",
};

// What a person can do about a field the API refused (its own words are for developers).
const FIELD_PROBLEMS = {
  email: 'Enter a valid email address, like name@example.com.',
  password: 'This password is too long. Choose a shorter one.',
};

function validationProblem(err) {
  const fields = (err.details || []).map((d) => String(d.field || ''));
  // An id in the address that is not an id at all (a cut-off link): nothing to find there.
  if (fields.some((f) => f.startsWith('path.'))) {
    return { title: 'Not found', message: 'This result does not exist or was deleted.', retry: false };
  }
  const known = fields.map((f) => FIELD_PROBLEMS[f.split('.').pop()]).find(Boolean);
  return {
    title: 'Please check',
    message: known || 'Something in this form could not be accepted. Please check it and try again.',
    retry: false,
  };
}

export function describeError(err) {
  const code = err?.code || 'unknown';
  const status = err?.status ?? 0;
  if (code === 'offline') {
    const where = navigator.onLine === false ? 'You are offline.' : "SkinScan's server can't be reached.";
    return {
      title: 'No connection',
      message: `${where} Nothing is lost: try again when you're back online.`,
      retry: true,
    };
  }
  if (code === 'timeout') {
    return {
      title: 'No answer',
      message: 'SkinScan did not answer in time. Nothing is lost: please try again.',
      retry: true,
    };
  }
  if (code === 'session_ended') {
    return { title: 'Signed out', message: err.message, retry: false, signIn: true };
  }
  if (IMAGE_PROBLEMS[code]) {
    return { title: "This photo can't be checked", message: IMAGE_PROBLEMS[code], retry: false, badFile: true };
  }
  if (status === 429 || status === 503 || code === 'busy') {
    const wait = err.retryAfter ? ` in ${Math.ceil(err.retryAfter)} seconds` : ' in a moment';
    if (code === 'database_unavailable') {
      return {
        title: 'SkinScan is unavailable',
        message: `SkinScan's server can't reach its database right now. Nothing is lost: please try again${wait}.`,
        retry: true,
      };
    }
    return {
      title: 'SkinScan is busy',
      message: `Too many requests right now. Nothing is lost: please try again${wait}.`,
      retry: true,
    };
  }
  if (status === 413) {
    return { title: "This photo can't be checked", message: IMAGE_PROBLEMS.too_large, retry: false, badFile: true };
  }
  if (code === 'validation_error') return validationProblem(err);
  if (status === 404) {
    return { title: 'Not found', message: 'This result does not exist or was deleted.', retry: false };
  }
  if (status >= 500) {
    return {
      title: 'Something went wrong',
      message: 'The server had a problem. Nothing is lost: please try again.',
      retry: true,
    };
  }
  // 4xx with a message from the API (validation, conflicts): the server's words are specific.
  return { title: 'Please check', message: err?.message || 'Something went wrong.', retry: false };
}
