// Realtime through the official PocketBase JS SDK: subscribe/unsubscribe, create/update/delete
// events, topic options (fields), against keepbase and (as an oracle) the real PocketBase.
//
// Usage: KB_URL=... KB_EMAIL=... KB_PASSWORD=... node --experimental-eventsource --test sdk_realtime.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PocketBase from 'pocketbase';

const URL = process.env.KB_URL;
const EMAIL = process.env.KB_EMAIL;
const PASSWORD = process.env.KB_PASSWORD;
if (!URL || !EMAIL || !PASSWORD) throw new Error('KB_URL, KB_EMAIL and KB_PASSWORD must be set');

const admin = new PocketBase(URL);
admin.autoCancellation(false);
const guest = new PocketBase(URL);
guest.autoCancellation(false);
const NAME = `sdk_rt_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
let collection = null;

function waitFor(list, n, ms = 5000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (list.length >= n) return resolve(list.slice(0, n));
      if (Date.now() - started > ms) return reject(new Error(`expected ${n} events, got ${list.length}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await admin.collection('_superusers').authWithPassword(EMAIL, PASSWORD);
  collection = await admin.collections.create({
    name: NAME, type: 'base', listRule: '', viewRule: '', createRule: '', updateRule: '', deleteRule: '',
    fields: [{ name: 'title', type: 'text' }, { name: 'views', type: 'number' }],
  });
});

after(async () => {
  guest.realtime.unsubscribe();
  if (collection) await admin.collections.delete(collection.id).catch(() => {});
});

test('subscribe to * receives create, update and delete', async () => {
  const events = [];
  const unsubscribe = await guest.collection(NAME).subscribe('*', (e) => events.push(e));
  assert.equal(typeof guest.realtime.clientId, 'string');
  assert.equal(guest.realtime.clientId.length, 40);
  assert.ok(guest.realtime.isConnected);

  const rec = await admin.collection(NAME).create({ title: 'hello', views: 1 });
  const [created] = await waitFor(events, 1);
  assert.equal(created.action, 'create');
  assert.deepEqual(created.record, rec);

  const upd = await admin.collection(NAME).update(rec.id, { 'views+': 2 });
  const [, updated] = await waitFor(events, 2);
  assert.equal(updated.action, 'update');
  assert.equal(updated.record.views, 3);
  assert.deepEqual(updated.record, upd);

  await admin.collection(NAME).delete(rec.id);
  const [, , deleted] = await waitFor(events, 3);
  assert.equal(deleted.action, 'delete');
  assert.equal(deleted.record.id, rec.id);

  await unsubscribe();
  await admin.collection(NAME).create({ title: 'unheard' });
  await sleep(500);
  assert.equal(events.length, 3);
});

test('record topic with fields option, and unsubscribe by topic', async () => {
  const rec = await admin.collection(NAME).create({ title: 'watched', views: 5 });
  const one = [];
  const all = [];
  await guest.collection(NAME).subscribe(rec.id, (e) => one.push(e), { fields: 'id,views' });
  await guest.collection(NAME).subscribe('*', (e) => all.push(e));
  await admin.collection(NAME).update(rec.id, { views: 6 });
  const [ev] = await waitFor(one, 1);
  assert.deepEqual(ev, { action: 'update', record: { id: rec.id, views: 6 } });
  await waitFor(all, 1);

  await guest.collection(NAME).unsubscribe(rec.id);
  await admin.collection(NAME).update(rec.id, { views: 7 });
  await waitFor(all, 2);
  await sleep(300);
  assert.equal(one.length, 1);
  await guest.collection(NAME).unsubscribe();
  assert.equal(guest.realtime.isConnected, false);
});
