// End-to-end auth flow driving the official PocketBase JS SDK against a running server:
// sign up -> request verification -> read the token from a real SMTP server -> confirm ->
// sign in -> refresh -> sign out -> a protected call fails.
//
// Usage (normally run by tests/auth/test_js_sdk_auth.py):
//   KB_URL=http://127.0.0.1:8090 KB_EMAIL=admin@example.com KB_PASSWORD=secret123456 \
//   SMTP_PORT=2525 MAIL_URL=http://127.0.0.1:8091 node --test tests/js/sdk_auth.test.mjs
//
// SMTP_PORT is a real SMTP server the pytest wrapper runs (aiosmtpd); MAIL_URL is a small HTTP
// endpoint of the wrapper: `GET /token?to=<email>&route=confirm-verification` waits for a mail
// to <email> and answers the token of its `.../confirm-verification/<token>` link as plain text.
// KB_SKIP (optional) lists ids of checks to skip, see `skipped()` below.
//
// The same file runs against keepbase and against the real PocketBase binary (oracle),
// so every assertion here must hold for PocketBase 0.40. Top-level tests run sequentially in
// declaration order and share state.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError } from 'pocketbase';

const URL = process.env.KB_URL;
const EMAIL = process.env.KB_EMAIL;
const PASSWORD = process.env.KB_PASSWORD;
const SMTP_PORT = Number(process.env.SMTP_PORT);
const MAIL_URL = process.env.MAIL_URL;

if (!URL || !EMAIL || !PASSWORD || !SMTP_PORT || !MAIL_URL) {
  throw new Error('KB_URL, KB_EMAIL, KB_PASSWORD, SMTP_PORT and MAIL_URL must be set');
}

// KB_SKIP: comma-separated ids of checks to skip (known keepbase bugs, run separately as xfail)
const SKIP = new Set((process.env.KB_SKIP || '').split(',').filter(Boolean));
const skipped = (id) => (SKIP.has(id) ? `known bug, KB_SKIP=${id}` : false);

const ID_RE = /^[a-z0-9]{15}$/;
const JWT_RE = /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/;

const admin = new PocketBase(URL);
admin.autoCancellation(false);
const pb = new PocketBase(URL); // the end user's client
pb.autoCancellation(false);

const USER_EMAIL = `sdk-auth-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}@example.com`;
const USER_PASSWORD = 'User-pass-123456';

let user = null;
let token = null;
let firstAuthToken = null;

async function expectError(promise, status) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    assert.equal(err.status, status, `expected status ${status}, got ${err.status}: ${JSON.stringify(err.response)}`);
    return err;
  }
  assert.fail(`expected a ${status} ClientResponseError, but the request succeeded`);
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

before(async () => {
  await admin.collection('_superusers').authWithPassword(EMAIL, PASSWORD);
  assert.ok(admin.authStore.isSuperuser);
  // PATCH /api/settings: send mail to the wrapper's SMTP server
  const settings = await admin.settings.update({
    smtp: { enabled: true, host: '127.0.0.1', port: SMTP_PORT, tls: false },
  });
  assert.equal(settings.smtp.enabled, true);
  assert.equal(settings.smtp.host, '127.0.0.1');
  assert.equal(settings.smtp.port, SMTP_PORT);
});

after(async () => {
  if (user) {
    try {
      await admin.collection('users').delete(user.id);
    } catch {
      // best effort
    }
  }
});

test('sign up through the public create rule', async () => {
  assert.equal(pb.authStore.isValid, false);
  user = await pb.collection('users').create({
    email: USER_EMAIL,
    password: USER_PASSWORD,
    passwordConfirm: USER_PASSWORD,
  });
  assert.match(user.id, ID_RE);
  assert.equal(user.collectionName, 'users');
  assert.equal(user.verified, false);
  assert.equal(user.password, undefined);
  assert.equal(user.passwordConfirm, undefined);
  assert.equal(user.emailVisibility, false);
  assert.equal(pb.authStore.isValid, false, 'create() does not sign in');
});

test("the guest's create response hides the email (emailVisibility false)", { skip: skipped("create-hides-email") }, () => {
  assert.ok(user, 'sign up failed');
  assert.equal(user.email, undefined);
});

test('request verification and read the token from the SMTP server', async () => {
  const ok = await pb.collection('users').requestVerification(USER_EMAIL);
  assert.equal(ok, true);
  const resp = await fetch(`${MAIL_URL}/token?to=${encodeURIComponent(USER_EMAIL)}&route=confirm-verification`);
  const body = await resp.text();
  assert.equal(resp.status, 200, `mail endpoint: ${body}`);
  token = body.trim();
  assert.match(token, JWT_RE);
  const c = claims(token);
  assert.equal(c.type, 'verification');
  assert.equal(c.id, user.id);
  assert.equal(c.email, USER_EMAIL);
});

test('a wrong verification token is rejected with 400', async () => {
  const err = await expectError(pb.collection('users').confirmVerification('not-a-token'), 400);
  assert.equal(err.response.data.token.code, 'validation_invalid_token_claims');
});

test('confirm verification', async () => {
  assert.ok(token, 'no verification token');
  const ok = await pb.collection('users').confirmVerification(token);
  assert.equal(ok, true);
  const fresh = await admin.collection('users').getOne(user.id);
  assert.equal(fresh.verified, true);
});

test('sign in with password', async () => {
  await expectError(pb.collection('users').authWithPassword(USER_EMAIL, 'wrong-password-1'), 400);
  assert.equal(pb.authStore.isValid, false);

  const auth = await pb.collection('users').authWithPassword(USER_EMAIL, USER_PASSWORD);
  assert.match(auth.token, JWT_RE);
  assert.equal(auth.record.id, user.id);
  assert.equal(auth.record.email, USER_EMAIL, 'the owner sees their own email');
  assert.equal(auth.record.verified, true);
  assert.equal(auth.record.collectionName, 'users');
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.isSuperuser, false);
  assert.equal(pb.authStore.token, auth.token);
  assert.equal(pb.authStore.record.id, user.id);
  assert.equal(pb.authStore.record.verified, true);
  const c = claims(auth.token);
  assert.equal(c.type, 'auth');
  assert.equal(c.id, user.id);
  assert.equal(c.refreshable, true);
  firstAuthToken = auth.token;

  // an authenticated, rule-protected call works (users viewRule: id = @request.auth.id)
  const me = await pb.collection('users').getOne(user.id);
  assert.equal(me.email, USER_EMAIL);
});

test('refresh the auth token', async () => {
  assert.ok(firstAuthToken, 'not signed in');
  // JWT iat/exp have second resolution: make sure the refreshed token differs
  await new Promise((r) => setTimeout(r, 1100));
  const auth = await pb.collection('users').authRefresh();
  assert.match(auth.token, JWT_RE);
  assert.notEqual(auth.token, firstAuthToken);
  assert.equal(auth.record.id, user.id);
  assert.equal(auth.record.verified, true);
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.token, auth.token);
  assert.ok(claims(auth.token).exp >= claims(firstAuthToken).exp);
});

test('sign out, then protected calls fail', async () => {
  pb.authStore.clear();
  assert.equal(pb.authStore.isValid, false);
  assert.equal(pb.authStore.token, '');
  assert.equal(pb.authStore.record, null);

  const err = await expectError(pb.collection('users').authRefresh(), 401);
  assert.equal(err.response.status, 401);
  // the owner-only record is invisible to a guest
  await expectError(pb.collection('users').getOne(user.id), 404);
  // superuser-only API
  await expectError(pb.settings.getAll(), 401);
  await expectError(pb.collections.getList(1, 1), 401);

  // a regular user's token does not open superuser routes either
  await pb.collection('users').authWithPassword(USER_EMAIL, USER_PASSWORD);
  await expectError(pb.settings.getAll(), 403);
  pb.authStore.clear();
});
